//! Turns one shell line into commands: words, quoting, redirection, `&` and `;`.
//!
//! The rules are bash's, cut down to what MAVFS needs: words split on blanks; `'...'` keeps
//! everything literally; `"..."` keeps everything but lets `\` escape `"`, `\` and `$`; a `\`
//! outside quotes escapes the next character; `#` at the start of a word begins a comment.
//! Unquoted `>` and `>>` redirect the command's output into the word that follows, `&` ends a
//! command and runs it in the background, `;` ends a command. `$'...'` is bash's ANSI-C quoting
//! (`\n`, `\t`, `\a`, `\e`, `\033`, `\xHH`, `\'`, `\\`), so that a name `ls` shows quoted on a
//! terminal (`'a'$'\n''b'`) can be typed back as shown. There is no globbing and no variable
//! expansion: `*`, `?` and any other `$` are ordinary characters, so hostile names need no
//! escaping beyond quoting blanks.

use std::fmt;

/// Where a command's output goes when redirected.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Redirect {
    /// `>>` appends; `>` replaces.
    pub append: bool,
    pub target: String,
}

/// One command of a line.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct Command {
    pub argv: Vec<String>,
    pub redirect: Option<Redirect>,
    /// Ended by `&`: run as a background job.
    pub background: bool,
}

/// A line the parser cannot read.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ParseError(pub String);

impl fmt::Display for ParseError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.0)
    }
}

#[derive(Debug, PartialEq)]
enum Token {
    Word(String),
    Redirect { append: bool },
    Background,
    Separator,
}

fn tokenize(line: &str) -> Result<Vec<Token>, ParseError> {
    let mut tokens = Vec::new();
    let mut chars = line.chars().peekable();
    let mut word = String::new();
    // Whether a word is under way, even an empty one such as `""`.
    let mut in_word = false;
    let finish = |tokens: &mut Vec<Token>, word: &mut String, in_word: &mut bool| {
        if *in_word {
            tokens.push(Token::Word(std::mem::take(word)));
            *in_word = false;
        }
    };
    while let Some(c) = chars.next() {
        match c {
            ' ' | '\t' | '\n' | '\r' => finish(&mut tokens, &mut word, &mut in_word),
            '#' if !in_word => break,
            '\'' => {
                in_word = true;
                loop {
                    match chars.next() {
                        Some('\'') => break,
                        Some(ch) => word.push(ch),
                        None => return Err(ParseError("unterminated single quote".into())),
                    }
                }
            }
            '"' => {
                in_word = true;
                loop {
                    match chars.next() {
                        Some('"') => break,
                        Some('\\') => match chars.next() {
                            Some(ch @ ('"' | '\\' | '$' | '`')) => word.push(ch),
                            Some(ch) => {
                                word.push('\\');
                                word.push(ch);
                            }
                            None => return Err(ParseError("unterminated double quote".into())),
                        },
                        Some(ch) => word.push(ch),
                        None => return Err(ParseError("unterminated double quote".into())),
                    }
                }
            }
            '\\' => {
                in_word = true;
                match chars.next() {
                    Some(ch) => word.push(ch),
                    None => return Err(ParseError("a trailing backslash escapes nothing".into())),
                }
            }
            '$' if chars.peek() == Some(&'\'') => {
                chars.next();
                in_word = true;
                word.push_str(&ansi_c(&mut chars)?);
            }
            '>' => {
                finish(&mut tokens, &mut word, &mut in_word);
                let append = chars.next_if_eq(&'>').is_some();
                tokens.push(Token::Redirect { append });
            }
            '&' => {
                finish(&mut tokens, &mut word, &mut in_word);
                tokens.push(Token::Background);
            }
            ';' => {
                finish(&mut tokens, &mut word, &mut in_word);
                tokens.push(Token::Separator);
            }
            other => {
                in_word = true;
                word.push(other);
            }
        }
    }
    finish(&mut tokens, &mut word, &mut in_word);
    Ok(tokens)
}

/// The rest of a `$'...'` piece, up to its closing quote, with bash's escapes. Octal and `\x`
/// escapes give bytes, which together must be UTF-8 (`$'\302\205'` is U+0085). Errors: an
/// unterminated piece, a NUL, or bytes that are not UTF-8.
fn ansi_c(chars: &mut std::iter::Peekable<std::str::Chars<'_>>) -> Result<String, ParseError> {
    let unterminated = || ParseError("unterminated $' quote".into());
    let mut bytes = Vec::new();
    let push = |bytes: &mut Vec<u8>, c: char| {
        let mut buf = [0u8; 4];
        bytes.extend_from_slice(c.encode_utf8(&mut buf).as_bytes());
    };
    loop {
        let c = chars.next().ok_or_else(unterminated)?;
        if c == '\'' {
            break;
        }
        if c != '\\' {
            push(&mut bytes, c);
            continue;
        }
        let e = chars.next().ok_or_else(unterminated)?;
        let named = match e {
            'a' => Some('\x07'),
            'b' => Some('\x08'),
            'e' | 'E' => Some('\x1b'),
            'f' => Some('\x0c'),
            'n' => Some('\n'),
            'r' => Some('\r'),
            't' => Some('\t'),
            'v' => Some('\x0b'),
            '\\' | '\'' | '"' | '?' => Some(e),
            _ => None,
        };
        if let Some(c) = named {
            push(&mut bytes, c);
            continue;
        }
        let (radix, max, mut value) = match e {
            '0'..='7' => (8, 2, e.to_digit(8).unwrap_or(0)),
            'x' => (16, 2, 0),
            // Not an escape: bash keeps the backslash.
            other => {
                push(&mut bytes, '\\');
                push(&mut bytes, other);
                continue;
            }
        };
        let mut digits = 0;
        while digits < max {
            match chars.peek().and_then(|d| d.to_digit(radix)) {
                Some(d) => {
                    value = value * radix + d;
                    chars.next();
                    digits += 1;
                }
                None => break,
            }
        }
        if e == 'x' && digits == 0 {
            push(&mut bytes, '\\');
            push(&mut bytes, 'x');
            continue;
        }
        // `\400` and above wrap, as in bash.
        bytes.push((value & 0xff) as u8);
    }
    if bytes.contains(&0) {
        return Err(ParseError("$' quote: a name cannot hold a NUL byte".into()));
    }
    String::from_utf8(bytes).map_err(|_| ParseError("$' quote: the bytes are not UTF-8".into()))
}

/// Parses a line into its commands; an empty or comment-only line gives none.
pub fn parse_line(line: &str) -> Result<Vec<Command>, ParseError> {
    let mut commands = Vec::new();
    let mut current = Command::default();
    let mut tokens = tokenize(line)?.into_iter();
    let mut end = |current: &mut Command, background: bool| -> Result<(), ParseError> {
        let cmd = std::mem::take(current);
        if cmd.argv.is_empty() {
            if cmd.redirect.is_some() || background {
                return Err(ParseError("syntax error: missing command".into()));
            }
            return Ok(());
        }
        commands.push(Command { background, ..cmd });
        Ok(())
    };
    while let Some(token) = tokens.next() {
        match token {
            Token::Word(w) => current.argv.push(w),
            Token::Redirect { append } => {
                let Some(Token::Word(target)) = tokens.next() else {
                    return Err(ParseError(
                        "syntax error: redirection needs a file name".into(),
                    ));
                };
                if current.redirect.is_some() {
                    return Err(ParseError("syntax error: more than one redirection".into()));
                }
                current.redirect = Some(Redirect { append, target });
            }
            Token::Background => end(&mut current, true)?,
            Token::Separator => end(&mut current, false)?,
        }
    }
    end(&mut current, false)?;
    Ok(commands)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn words(line: &str) -> Vec<String> {
        let cmds = parse_line(line).unwrap();
        assert_eq!(cmds.len(), 1, "{line}");
        cmds[0].argv.clone()
    }

    #[test]
    fn splits_on_blanks() {
        assert_eq!(words("  ls   -l\t/vram "), ["ls", "-l", "/vram"]);
    }

    #[test]
    fn quoting_and_escapes() {
        assert_eq!(
            words(r#"cat "a b" 'c d' e\ f"#),
            ["cat", "a b", "c d", "e f"]
        );
        assert_eq!(
            words(r#"echo "say \"hi\" \n" 'a\b'"#),
            ["echo", "say \"hi\" \\n", "a\\b"]
        );
        assert_eq!(words(r#"touch "" x"#), ["touch", "", "x"]);
        assert_eq!(words("echo a'b'\"c\""), ["echo", "abc"]);
        assert_eq!(words("echo '>' '&' ';' '#'"), ["echo", ">", "&", ";", "#"]);
        assert_eq!(words("touch *?"), ["touch", "*?"]);
    }

    #[test]
    fn ansi_c_quoting_reads_back_what_ls_shows() {
        assert_eq!(words(r"touch 'a'$'\n''b'"), ["touch", "a\nb"]);
        assert_eq!(words(r"touch ''$'\033''[31mred'"), ["touch", "\x1b[31mred"]);
        assert_eq!(
            words(r"touch 'bell'$'\a' $'\e\x41\'\\'"),
            ["touch", "bell\x07", "\x1bA'\\"]
        );
        assert_eq!(words(r"touch ''$'\302\205'"), ["touch", "\u{85}"]);
        assert_eq!(words(r"echo $HOME a$b '$'"), ["echo", "$HOME", "a$b", "$"]);
        assert!(parse_line(r"touch $'\0'").is_err());
        assert!(parse_line(r"touch $'\377'").is_err());
        assert!(parse_line(r"touch $'abc").is_err());
        for name in [
            "a\nb",
            "\x1b[31mred",
            "it's\x07",
            "t\tab\u{9b}",
            "plain",
            "a b",
        ] {
            let shown = mavfs_actors::quote::shell_escape(name);
            assert_eq!(words(&format!("touch {shown}")), ["touch", name], "{shown}");
        }
    }

    #[test]
    fn comments() {
        assert!(parse_line("# only a comment").unwrap().is_empty());
        assert_eq!(words("echo a#b # c"), ["echo", "a#b"]);
    }

    #[test]
    fn redirection() {
        let cmds = parse_line("echo hi >> '/vram/a b'").unwrap();
        assert_eq!(cmds[0].argv, ["echo", "hi"]);
        assert_eq!(
            cmds[0].redirect,
            Some(Redirect {
                append: true,
                target: "/vram/a b".into()
            })
        );
        let cmds = parse_line("echo hi>/vram/x").unwrap();
        assert_eq!(cmds[0].redirect.as_ref().unwrap().target, "/vram/x");
        assert!(!cmds[0].redirect.as_ref().unwrap().append);
        assert!(parse_line("echo >").is_err());
        assert!(parse_line("> x").is_err());
    }

    #[test]
    fn background_and_separators() {
        let cmds = parse_line("push /vram/a /vdisk/a & ls ; pwd").unwrap();
        assert_eq!(cmds.len(), 3);
        assert!(cmds[0].background);
        assert!(!cmds[1].background);
        assert_eq!(cmds[2].argv, ["pwd"]);
        assert!(parse_line("&").is_err());
    }

    #[test]
    fn unterminated_quotes_are_errors() {
        assert!(parse_line("echo 'abc").is_err());
        assert!(parse_line("echo \"abc").is_err());
        assert!(parse_line("echo abc\\").is_err());
    }
}
