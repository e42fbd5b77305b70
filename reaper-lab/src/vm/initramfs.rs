//! The guest's initramfs, written in Rust: a "newc" cpio archive (the format
//! the kernel unpacks, see Documentation/driver-api/early-userspace/
//! buffer-format.rst) compressed with gzip. No cpio binary is needed.

use std::io::Write;
use std::path::{Path, PathBuf};

use anyhow::{Context, Result};
use flate2::{Compression, write::GzEncoder};

/// newc entries are aligned to 4 bytes (header + name, and data).
const ALIGN: usize = 4;
/// Size of a newc header: the magic and 13 eight-digit hex fields.
pub const HEADER_LEN: usize = 110;
const MAGIC: &str = "070701";
const TRAILER: &str = "TRAILER!!!";

const S_IFDIR: u32 = 0o040_000;
const S_IFREG: u32 = 0o100_000;
const S_IFLNK: u32 = 0o120_000;
const S_IFCHR: u32 = 0o020_000;

/// Streams newc cpio entries into a writer.
pub struct CpioWriter<W: Write> {
    out: W,
    next_ino: u32,
    offset: usize,
}

/// One entry's metadata as it goes into the header.
struct Entry<'a> {
    name: &'a str,
    mode: u32,
    nlink: u32,
    rdev: (u32, u32),
    data: &'a [u8],
}

impl<W: Write> CpioWriter<W> {
    pub fn new(out: W) -> Self {
        CpioWriter {
            out,
            next_ino: 1,
            offset: 0,
        }
    }

    /// A directory; `path` is relative to the root (no leading `/`).
    pub fn dir(&mut self, path: &str, perm: u32) -> std::io::Result<()> {
        self.entry(&Entry {
            name: path,
            mode: S_IFDIR | perm,
            nlink: 2,
            rdev: (0, 0),
            data: &[],
        })
    }

    pub fn file(&mut self, path: &str, perm: u32, data: &[u8]) -> std::io::Result<()> {
        self.entry(&Entry {
            name: path,
            mode: S_IFREG | perm,
            nlink: 1,
            rdev: (0, 0),
            data,
        })
    }

    pub fn symlink(&mut self, path: &str, target: &str) -> std::io::Result<()> {
        let data = target.as_bytes();
        self.entry(&Entry {
            name: path,
            mode: S_IFLNK | 0o777,
            nlink: 1,
            rdev: (0, 0),
            data,
        })
    }

    pub fn char_device(
        &mut self,
        path: &str,
        perm: u32,
        major: u32,
        minor: u32,
    ) -> std::io::Result<()> {
        let entry = Entry {
            name: path,
            mode: S_IFCHR | perm,
            nlink: 1,
            rdev: (major, minor),
            data: &[],
        };
        self.entry(&entry)
    }

    /// Writes the `TRAILER!!!` entry and returns the inner writer.
    pub fn finish(mut self) -> std::io::Result<W> {
        self.next_ino = 0;
        self.entry(&Entry {
            name: TRAILER,
            mode: 0,
            nlink: 1,
            rdev: (0, 0),
            data: &[],
        })?;
        Ok(self.out)
    }

    fn entry(&mut self, e: &Entry) -> std::io::Result<()> {
        let ino = self.next_ino;
        if ino != 0 {
            self.next_ino += 1;
        }
        let fields = [
            ino,
            e.mode,
            0, // uid
            0, // gid
            e.nlink,
            0, // mtime: fixed, so the same inputs give the same archive
            e.data.len() as u32,
            0, // devmajor
            0, // devminor
            e.rdev.0,
            e.rdev.1,
            e.name.len() as u32 + 1, // namesize counts the NUL
            0,                       // check (only used by the "crc" format)
        ];
        let mut header = String::with_capacity(HEADER_LEN);
        header.push_str(MAGIC);
        for field in fields {
            header.push_str(&format!("{field:08x}"));
        }
        self.write(header.as_bytes())?;
        self.write(e.name.as_bytes())?;
        self.write(&[0])?;
        self.pad()?;
        self.write(e.data)?;
        self.pad()
    }

    fn write(&mut self, bytes: &[u8]) -> std::io::Result<()> {
        self.out.write_all(bytes)?;
        self.offset += bytes.len();
        Ok(())
    }

    fn pad(&mut self) -> std::io::Result<()> {
        let pad = (ALIGN - self.offset % ALIGN) % ALIGN;
        self.write(&[0u8; ALIGN][..pad])
    }
}

/// What goes into the guest's initramfs.
pub struct Contents {
    pub busybox: PathBuf,
    pub init_script: String,
    pub command_script: String,
    /// Host files copied to `/opt/reaper/bin/<name>`.
    pub binaries: Vec<(String, PathBuf)>,
    /// The kernel's .config, linked by the init as `/boot/config-$(uname -r)`.
    pub kernel_config: Option<PathBuf>,
}

/// Directories the init expects to exist.
const DIRS: [&str; 17] = [
    "bin",
    "sbin",
    "usr",
    "usr/bin",
    "usr/sbin",
    "dev",
    "proc",
    "sys",
    "tmp",
    "run",
    "root",
    "out",
    "etc",
    "etc/reaper-vm",
    "opt",
    "opt/reaper",
    "boot",
];
/// Where the init finds the command and the binaries.
pub const COMMAND_PATH: &str = "etc/reaper-vm/command.sh";
pub const BIN_DIR: &str = "opt/reaper/bin";
pub const KERNEL_CONFIG_PATH: &str = "etc/reaper-vm/kernel.config";

/// Writes a gzip-compressed newc initramfs with `contents` to `path`.
pub fn build(contents: &Contents, path: &Path) -> Result<()> {
    let file = std::fs::File::create(path)
        .with_context(|| format!("creating initramfs {}", path.display()))?;
    let gz = GzEncoder::new(std::io::BufWriter::new(file), Compression::fast());
    let mut cpio = CpioWriter::new(gz);
    write_contents(&mut cpio, contents)
        .with_context(|| format!("writing initramfs {}", path.display()))?;
    let gz = cpio.finish().context("finishing the initramfs cpio")?;
    gz.finish()
        .and_then(|mut w| w.flush())
        .with_context(|| format!("finishing initramfs {}", path.display()))
}

fn write_contents<W: Write>(cpio: &mut CpioWriter<W>, c: &Contents) -> Result<()> {
    for dir in DIRS.iter().chain([&BIN_DIR]) {
        cpio.dir(dir, 0o755)?;
    }
    // The kernel opens /dev/console for init before devtmpfs is mounted.
    cpio.char_device("dev/console", 0o600, 5, 1)?;
    let busybox = read(&c.busybox)?;
    cpio.file("bin/busybox", 0o755, &busybox)?;
    cpio.symlink("bin/sh", "busybox")?;
    cpio.file("init", 0o755, c.init_script.as_bytes())?;
    cpio.file(COMMAND_PATH, 0o755, c.command_script.as_bytes())?;
    if let Some(config) = &c.kernel_config {
        cpio.file(KERNEL_CONFIG_PATH, 0o644, &read(config)?)?;
    }
    for (name, host_path) in &c.binaries {
        let data = read(host_path)?;
        cpio.file(&format!("{BIN_DIR}/{name}"), 0o755, &data)?;
    }
    Ok(())
}

fn read(path: &Path) -> Result<Vec<u8>> {
    std::fs::read(path).with_context(|| format!("reading {} for the initramfs", path.display()))
}

#[cfg(test)]
mod tests {
    use super::*;

    /// A parsed newc entry, for round-trip tests.
    #[derive(Debug)]
    struct Parsed {
        fields: Vec<u32>,
        name: String,
        data: Vec<u8>,
    }

    fn parse(mut bytes: &[u8]) -> Vec<Parsed> {
        let total = bytes.len();
        let mut out = Vec::new();
        loop {
            let at = total - bytes.len();
            assert_eq!(at % ALIGN, 0, "entry at {at} is not 4-byte aligned");
            assert_eq!(&bytes[..6], MAGIC.as_bytes());
            let fields: Vec<u32> = (0..13)
                .map(|i| {
                    let hex = std::str::from_utf8(&bytes[6 + 8 * i..14 + 8 * i]).unwrap();
                    u32::from_str_radix(hex, 16).unwrap()
                })
                .collect();
            let namesize = fields[11] as usize;
            let name = &bytes[HEADER_LEN..HEADER_LEN + namesize];
            assert_eq!(name.last(), Some(&0), "name must be NUL-terminated");
            let name = String::from_utf8(name[..namesize - 1].to_vec()).unwrap();
            let data_at = (HEADER_LEN + namesize).next_multiple_of(ALIGN);
            assert!(
                bytes[HEADER_LEN + namesize..data_at]
                    .iter()
                    .all(|&b| b == 0)
            );
            let size = fields[6] as usize;
            let data = bytes[data_at..data_at + size].to_vec();
            let next = (data_at + size).next_multiple_of(ALIGN);
            assert!(bytes[data_at + size..next].iter().all(|&b| b == 0));
            bytes = &bytes[next..];
            let done = name == TRAILER;
            out.push(Parsed { fields, name, data });
            if done {
                assert!(bytes.is_empty(), "bytes after the trailer");
                return out;
            }
        }
    }

    #[test]
    fn cpio_round_trip_keeps_names_modes_data_and_padding() {
        let mut cpio = CpioWriter::new(Vec::new());
        cpio.dir("bin", 0o755).unwrap();
        cpio.file("bin/a", 0o644, b"hello").unwrap(); // 5 bytes: needs 3 of padding
        cpio.file("init", 0o755, b"").unwrap();
        cpio.symlink("bin/sh", "busybox").unwrap();
        cpio.char_device("dev/console", 0o600, 5, 1).unwrap();
        let bytes = cpio.finish().unwrap();
        assert_eq!(bytes.len() % ALIGN, 0);
        let entries = parse(&bytes);
        let names: Vec<&str> = entries.iter().map(|e| e.name.as_str()).collect();
        assert_eq!(
            names,
            ["bin", "bin/a", "init", "bin/sh", "dev/console", TRAILER]
        );
        assert_eq!(entries[0].fields[1], S_IFDIR | 0o755);
        assert_eq!(entries[1].fields[1], S_IFREG | 0o644);
        assert_eq!(entries[1].data, b"hello");
        assert_eq!(entries[3].fields[1], S_IFLNK | 0o777);
        assert_eq!(entries[3].data, b"busybox");
        assert_eq!(entries[4].fields[1], S_IFCHR | 0o600);
        assert_eq!((entries[4].fields[9], entries[4].fields[10]), (5, 1));
        // Inodes are unique and non-zero; the trailer has ino 0, size 0.
        let inos: Vec<u32> = entries[..5].iter().map(|e| e.fields[0]).collect();
        assert_eq!(inos, [1, 2, 3, 4, 5]);
        let trailer = entries.last().unwrap();
        assert_eq!(
            (trailer.fields[0], trailer.fields[6], trailer.fields[4]),
            (0, 0, 1)
        );
    }

    #[test]
    fn cpio_header_is_110_bytes_of_ascii_hex() {
        let bytes = CpioWriter::new(Vec::new()).finish().unwrap();
        let header = std::str::from_utf8(&bytes[..HEADER_LEN]).unwrap();
        assert!(header.starts_with(MAGIC));
        assert!(header[6..].chars().all(|c| c.is_ascii_hexdigit()));
        // namesize of "TRAILER!!!" plus its NUL.
        assert_eq!(&header[94..102], "0000000b");
    }

    #[test]
    fn initramfs_is_gzip_of_a_cpio_with_init_and_console() {
        let dir = std::env::temp_dir().join(format!("reaper-lab-initramfs-{}", std::process::id()));
        std::fs::create_dir_all(&dir).unwrap();
        let busybox = dir.join("busybox");
        std::fs::write(&busybox, b"\x7fELF fake").unwrap();
        let contents = Contents {
            busybox,
            init_script: "#!/bin/busybox sh\n".into(),
            command_script: "uname -a\n".into(),
            binaries: vec![("reaper".into(), dir.join("busybox"))],
            kernel_config: Some(dir.join("busybox")),
        };
        let out = dir.join("initramfs.gz");
        build(&contents, &out).unwrap();
        let mut raw = Vec::new();
        let gz = std::fs::File::open(&out).unwrap();
        std::io::Read::read_to_end(&mut flate2::read::GzDecoder::new(gz), &mut raw).unwrap();
        let entries = parse(&raw);
        let find = |n: &str| entries.iter().find(|e| e.name == n).unwrap();
        assert_eq!(find("init").data, b"#!/bin/busybox sh\n");
        assert_eq!(find(COMMAND_PATH).data, b"uname -a\n");
        assert_eq!(find("opt/reaper/bin/reaper").data, b"\x7fELF fake");
        assert_eq!(find(KERNEL_CONFIG_PATH).data, b"\x7fELF fake");
        assert_eq!(find("dev/console").fields[1], S_IFCHR | 0o600);
        assert_eq!(find("boot").fields[1], S_IFDIR | 0o755);
        std::fs::remove_dir_all(&dir).unwrap();
    }
}
