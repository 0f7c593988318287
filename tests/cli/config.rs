//! Config files through the real binary: lookup order, mounts they declare, and errors (exit 2);
//! Redis mounts against private `redis-server`s (skipped, with a message, without one).

use crate::harness;
use mavfs_test_support::redis as redis_support;

use std::fs;
use std::io::Write;
use std::time::{Duration, Instant};

use harness::Mavfs;
use redis_support::RedisServer;

#[test]
fn a_config_file_declares_the_mounts() {
    let m = Mavfs::new();
    fs::create_dir(m.path().join("cold")).unwrap();
    fs::write(
        m.path().join("custom.toml"),
        "[[mount]]\npath = \"/hot\"\nbackend = \"memory\"\ncapacity = \"1KiB\"\n\n\
         [[mount]]\npath = \"/cold\"\nbackend = \"disk\"\nroot = \"./cold\"\n",
    )
    .unwrap();
    let out = m.run(&[
        "-c",
        "custom.toml",
        "exec",
        "pwd",
        "mounts",
        "echo x > /cold/f",
        "push /cold/f /hot/f",
    ]);
    out.fails(1, "push copies hot -> cold");
    assert_eq!(
        out.stdout,
        "/hot\n/hot       memory   hot\n/cold      disk     cold\n"
    );
    assert!(m.path().join("cold/f").exists());
}

#[test]
fn memory_capacity_is_enforced_and_nothing_is_left_behind() {
    let m = Mavfs::new();
    fs::write(
        m.path().join("mavfs.toml"),
        "[[mount]]\npath = \"/vram\"\nbackend = \"memory\"\ncapacity = \"10B\"\n",
    )
    .unwrap();
    let out = m.exec(&["echo 12345 > /vram/a", "echo 1234567890 > /vram/b"]);
    out.fails(1, "mavfs: echo: /vram/b: No space left on device");
    let out = m.exec(&["echo 12345 > /vram/a", "echo 123 > /vram/b", "ls", "stats"]);
    assert!(out.ok().starts_with("a\nb\n"), "{}", out.stdout);
}

#[test]
fn the_xdg_config_is_used_when_there_is_no_local_one() {
    let m = Mavfs::new();
    let xdg = m.path().join("xdg/mavfs");
    fs::create_dir_all(&xdg).unwrap();
    fs::write(
        xdg.join("config.toml"),
        "[[mount]]\npath = \"/xdg\"\nbackend = \"memory\"\n",
    )
    .unwrap();
    assert_eq!(m.exec(&["pwd"]).ok(), "/xdg\n");
    fs::write(
        m.path().join("mavfs.toml"),
        "[[mount]]\npath = \"/local\"\nbackend = \"memory\"\n",
    )
    .unwrap();
    assert_eq!(
        m.exec(&["pwd"]).ok(),
        "/local\n",
        "./mavfs.toml comes first"
    );
}

#[test]
fn config_errors_name_file_line_and_key_and_exit_2() {
    let cases = [
        (
            "[[mount]]\npath = \"/vram\"\nbackend = \"memory\"\ncolour = \"red\"\n",
            "mavfs.toml:4",
            "colour",
        ),
        (
            "[[mount]]\npath = \"/vram\"\nbackend = \"tape\"\n",
            "mavfs.toml:3",
            "backend",
        ),
        (
            "[[mount]]\npath = \"/a\"\nbackend = \"memory\"\n[[mount]]\npath = \"/a\"\nbackend = \"memory\"\n",
            "mavfs.toml:5",
            "path",
        ),
        (
            "[[mount]]\npath = \"/a/b\"\nbackend = \"memory\"\n",
            "mavfs.toml:2",
            "path",
        ),
        (
            "[[mount]]\npath = \"/d\"\nbackend = \"disk\"\nroot = \"./missing\"\n",
            "mavfs.toml:4",
            "root",
        ),
        (
            "[[mount]]\npath = \"/r\"\nbackend = \"redis\"\nurl = \"http://u:hunter2@h\"\n",
            "mavfs.toml:4",
            "url",
        ),
        ("[[mount]\npath = 1\n", "mavfs.toml:1", "syntax"),
    ];
    for (text, place, key) in cases {
        let m = Mavfs::new();
        fs::write(m.path().join("mavfs.toml"), text).unwrap();
        let out = m.exec(&["pwd"]);
        assert_eq!(out.code, 2, "{text}\n{}", out.stderr);
        assert!(
            out.stderr.contains(place) && out.stderr.contains(key),
            "{text}\n{}",
            out.stderr
        );
        assert!(
            !out.stderr.contains("hunter2"),
            "secrets never show: {}",
            out.stderr
        );
    }
}

#[test]
fn a_missing_config_file_given_with_c_is_an_error() {
    let m = Mavfs::new();
    m.run(&["-c", "nope.toml", "exec", "pwd"])
        .fails(2, "nope.toml");
}

#[test]
fn an_unreachable_redis_mount_is_reported_and_the_other_mounts_stay_usable() {
    // A port nothing listens on.
    let port = std::net::TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port();
    let url = format!("redis://:hunter2@127.0.0.1:{port}/0");
    let shown = format!("redis://:***@127.0.0.1:{port}/0");

    let m = Mavfs::new();
    let out = m.run(&["--ram", "redis", "--redis-url", &url, "exec", "pwd", "ls /"]);
    assert_eq!(out.ok(), "/vdisk\nvdisk/\n", "/vdisk still works");
    assert!(
        out.stderr
            .contains("mavfs: mount /vram: Backend unavailable")
            && out.stderr.contains(&shown),
        "{}",
        out.stderr
    );
    assert!(!out.stderr.contains("hunter2"), "{}", out.stderr);

    // With no mount left, it is a start error.
    let m = Mavfs::new();
    fs::write(
        m.path().join("mavfs.toml"),
        format!("[[mount]]\npath = \"/shared\"\nbackend = \"redis\"\nurl = \"{url}\"\n"),
    )
    .unwrap();
    let out = m.exec(&["pwd"]);
    out.fails(2, "mavfs: mount /shared: Backend unavailable");
    assert!(
        out.stderr.contains("no mount could start"),
        "{}",
        out.stderr
    );
    assert!(!out.stderr.contains("hunter2"), "{}", out.stderr);
}

#[test]
fn a_redis_mount_reads_its_password_from_the_named_variable() {
    let Some(server) = RedisServer::start_with("redis password_env", &["--requirepass", "s3cret"])
    else {
        return;
    };
    let m = Mavfs::new();
    fs::write(
        m.path().join("mavfs.toml"),
        format!(
            "[[mount]]\npath = \"/shared\"\nbackend = \"redis\"\nurl = \"{}\"\n\
             password_env = \"MAVFS_TEST_REDIS_PASSWORD\"\n",
            server.url()
        ),
    )
    .unwrap();
    let out = m.exec(&["pwd"]);
    out.fails(
        2,
        "environment variable MAVFS_TEST_REDIS_PASSWORD (password_env) is not set",
    );
    let run = |password: &str| {
        let mut cmd = m.command();
        cmd.env("MAVFS_TEST_REDIS_PASSWORD", password).args([
            "exec",
            "echo hi > /shared/f",
            "cat /shared/f",
        ]);
        cmd.output().unwrap()
    };
    let out = run("s3cret");
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    assert_eq!(out.stdout, b"hi\n");
    let out = run("wrong");
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert_eq!(out.status.code(), Some(2), "{stderr}");
    assert!(stderr.contains("mount /shared"), "{stderr}");
    assert!(
        !stderr.contains("wrong") || stderr.contains("***"),
        "{stderr}"
    );
}

#[test]
fn an_evicting_redis_is_a_warning_at_start() {
    let args = ["--maxmemory", "64mb", "--maxmemory-policy", "allkeys-lru"];
    let Some(server) = RedisServer::start_with("evicting redis warning", &args) else {
        return;
    };
    let m = Mavfs::new();
    let out = m.run(&[
        "--ram",
        "redis",
        "--redis-url",
        &server.url(),
        "exec",
        "pwd",
    ]);
    assert_eq!(out.ok(), "/vram\n");
    assert!(
        out.stderr.contains("mavfs: mount /vram: warning:") && out.stderr.contains("allkeys-lru"),
        "{}",
        out.stderr
    );
    assert_eq!(
        out.stderr.matches("allkeys-lru").count(),
        1,
        "printed once:\n{}",
        out.stderr
    );
}

/// A Redis ACL user without the rights MAVFS needs: what it may not do is `Permission denied`,
/// at start (keys outside its patterns) and on a write (commands it may not run, refused inside
/// a script), never an I/O error.
#[test]
fn a_redis_acl_refusal_is_permission_denied() {
    let Some(server) = RedisServer::start("redis ACL refusal") else {
        return;
    };
    let m = Mavfs::new();
    let url = server.url();
    // The namespace made by the default user first.
    m.run(&["--redis-url", &url, "exec", "echo x > /vram/f"])
        .ok();
    server.cli(&[
        "ACL",
        "SETUSER",
        "elsewhere",
        "on",
        ">pw",
        "~other:*",
        "+@all",
    ]);
    server.cli(&[
        "ACL",
        "SETUSER",
        "reader",
        "on",
        ">pw",
        "~*",
        "+@read",
        "+@connection",
        "+@scripting",
        "+info",
    ]);
    let with = |user: &str| url.replacen("redis://", &format!("redis://{user}:pw@"), 1);
    let out = m.run(&["--redis-url", &with("elsewhere"), "exec", "ls /vram"]);
    out.fails(
        1,
        "mavfs: mount /vram: Permission denied (Redis at redis://elsewhere:***@",
    );
    assert!(out.stderr.contains("NOPERM"), "{}", out.stderr);
    let out = m.run(&[
        "--redis-url",
        &with("reader"),
        "exec",
        "cat /vram/f",
        "echo y > /vram/g",
    ]);
    assert_eq!(out.stdout, "x\n");
    out.fails(
        1,
        "mavfs: echo: /vram/g: Permission denied (Redis at redis://reader:***@",
    );
    assert!(!out.stderr.contains("Input/output error"), "{}", out.stderr);
}

/// Two `mavfs` processes on one Redis, both alive at once: what one writes, the other lists and
/// reads, both ways.
#[test]
fn two_processes_share_one_redis() {
    let Some(server) = RedisServer::start("two mavfs processes") else {
        return;
    };
    let url = server.url();
    let flags = ["--ram", "redis", "--redis-url", url.as_str()];
    let (a, b) = (Mavfs::new(), Mavfs::new());

    // A: a shell kept open on a pipe, so it lives while B works.
    let mut shell = a.piped_shell(&flags);
    let mut stdin = shell.stdin.take().unwrap();
    writeln!(stdin, "mkdir /vram/d").unwrap();
    writeln!(stdin, "echo from a > /vram/d/a.txt").unwrap();
    stdin.flush().unwrap();

    // B sees A's file as soon as A has written it. (`cat` first: an `ls` that ran before A's
    // write committed would list an empty directory.)
    let deadline = Instant::now() + Duration::from_secs(20);
    loop {
        let mut args = flags.to_vec();
        args.extend(["exec", "cat /vram/d/a.txt", "ls /vram/d"]);
        let out = b.run(&args);
        if out.code == 0 {
            assert_eq!(out.stdout, "from a\na.txt\n");
            break;
        }
        assert!(
            Instant::now() < deadline,
            "B never saw A's file: {}",
            out.stderr
        );
        std::thread::sleep(Duration::from_millis(50));
    }
    let mut args = flags.to_vec();
    args.extend(["exec", "echo from b > /vram/d/b.txt"]);
    b.run(&args).ok();

    // A, still running, lists and reads B's file.
    writeln!(stdin, "ls /vram/d").unwrap();
    writeln!(stdin, "cat /vram/d/b.txt").unwrap();
    drop(stdin);
    let out = shell.wait_with_output().unwrap();
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(out.status.success(), "{stderr}");
    assert_eq!(
        String::from_utf8_lossy(&out.stdout),
        "a.txt\nb.txt\nfrom b\n"
    );
}

#[test]
fn a_readable_config_holding_a_redis_password_is_a_warning() {
    use std::os::unix::fs::PermissionsExt;
    let m = Mavfs::new();
    let file = m.path().join("mavfs.toml");
    // An unreachable port: the warning comes at load, before any connection.
    fs::write(
        &file,
        "[[mount]]\npath = \"/m\"\nbackend = \"memory\"\n\n\
         [[mount]]\npath = \"/r\"\nbackend = \"redis\"\nurl = \"redis://:hunter2@127.0.0.1:1/0\"\n",
    )
    .unwrap();
    for (mode, who) in [(0o644, "every user"), (0o640, "its group")] {
        fs::set_permissions(&file, fs::Permissions::from_mode(mode)).unwrap();
        let out = m.exec(&["pwd"]);
        assert_eq!(out.ok(), "/m\n");
        let warning = out
            .stderr
            .lines()
            .find(|l| l.contains("warning: ./mavfs.toml is readable by"))
            .unwrap_or_else(|| panic!("no warning at mode {mode:o}:\n{}", out.stderr));
        assert!(
            warning.contains(who) && warning.contains("password_env"),
            "{warning}"
        );
        assert!(!out.stderr.contains("hunter2"), "{}", out.stderr);
    }
    fs::set_permissions(&file, fs::Permissions::from_mode(0o600)).unwrap();
    let out = m.exec(&["pwd"]);
    assert!(!out.stderr.contains("readable by"), "{}", out.stderr);
}

#[test]
fn a_redis_url_flag_that_is_not_redis_is_refused() {
    let m = Mavfs::new();
    let out = m.run(&["--redis-url", "http://u:hunter2@127.0.0.1:1", "exec", "pwd"]);
    out.fails(2, "--redis-url: the scheme must be redis:// or rediss://");
    assert!(!out.stderr.contains("hunter2"), "{}", out.stderr);
    assert_eq!(out.stdout, "");
}

#[test]
fn system_directories_are_refused_as_disk_roots() {
    let cases = [
        ("/", "/ is the host's whole file system"),
        ("/etc", "/etc is a system directory"),
        ("/usr", "/usr is a system directory"),
        (
            "/proc",
            "/proc is on the kernel's proc file system, which cannot hold files",
        ),
        (
            "/sys/kernel",
            "/sys/kernel is on the kernel's sysfs file system",
        ),
    ];
    for (root, message) in cases {
        let m = Mavfs::new();
        fs::write(
            m.path().join("mavfs.toml"),
            format!("[[mount]]\npath = \"/d\"\nbackend = \"disk\"\nroot = \"{root}\"\n"),
        )
        .unwrap();
        let out = m.exec(&["ls /d"]);
        out.fails(2, message);
        assert!(
            out.stderr.contains("mavfs.toml:4: key mount[1].root"),
            "{}",
            out.stderr
        );
        assert_eq!(out.stdout, "", "nothing of {root} is listed");
        let out = Mavfs::new().run(&["--disk-dir", root, "exec", "ls /vdisk"]);
        out.fails(2, &format!("--disk-dir: {message}"));
        assert_eq!(out.stdout, "");
    }
    // A symlink to / is no way around it.
    let m = Mavfs::new();
    std::os::unix::fs::symlink("/", m.path().join("host")).unwrap();
    m.run(&["--disk-dir", "host", "exec", "ls /vdisk"])
        .fails(2, "host (resolved to /) is the host's whole file system");
}
