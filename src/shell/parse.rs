//! Turns one shell line into commands: words, quoting, redirection, `&` and `;`.
//!
//! The rules are bash's, cut down to what MAVFS needs: words split on blanks; `'...'` keeps
//! everything literally; `"..."` keeps everything but lets `\` escape `"`, `\` and `$`; a `\`
//! outside quotes escapes the next character; `#` at the start of a word begins a comment.
//! Unquoted `>` and `>>` redirect the command's output into the word that follows, `&` ends a
//! command and runs it in the background, `;` ends a command. There is no globbing and no variable
//! expansion: `*`, `?` and `$` are ordinary characters, so hostile names need no escaping beyond
//! quoting blanks.

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
