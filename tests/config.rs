//! Config files through the real binary: lookup order, mounts they declare, and errors (exit 2).

mod harness;

use std::fs;

use harness::Mavfs;

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
fn a_redis_mount_is_refused_at_start_until_the_redis_backend_exists() {
    let m = Mavfs::new();
    fs::write(
        m.path().join("mavfs.toml"),
        "[[mount]]\npath = \"/shared\"\nbackend = \"redis\"\nurl = \"redis://:pw@127.0.0.1:6379/0\"\n",
    )
    .unwrap();
    m.exec(&["pwd"])
        .fails(2, "mount /shared: the redis backend is not built yet");
    let m = Mavfs::new();
    m.run(&["--ram", "redis", "exec", "pwd"])
        .fails(2, "mount /vram: the redis backend is not built yet");
}
