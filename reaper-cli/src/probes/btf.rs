//! A small reader of kernel BTF (`/sys/kernel/btf/vmlinux`): the function
//! names fentry can attach to, their parameter names, and struct member
//! offsets (e.g. `vm_area_struct.vm_start`, which moved into an anonymous
//! union in 6.x).
//!
//! aya 0.14 keeps its type table crate-private, so reaper parses the format
//! itself (include/uapi/linux/btf.h); only the parts it needs are decoded.
//!
//! Weighed against btf-rs 1.1.1 (a kept, complete BTF parser) on the
//! development host's 6.18 vmlinux BTF, release builds, 2026-12-04 at load
//! average 18: btf-rs's `Btf::from_file` took 521–566 ms and 50 MiB of
//! peak RSS before the first lookup; this reader's index took 40–44 ms and
//! 7 MiB including `exit_mmap`'s id and `task_struct.pid`'s offset. `record`
//! parses BTF on its start-up path (the bench holds start-up to 0.54× perf's),
//! so the hand-written reader stays.

mod tracepoints;

/// `BTF_MAGIC`.
const MAGIC: u16 = 0xeb9f;

/// BTF kinds reaper looks at (include/uapi/linux/btf.h `BTF_KIND_*`).
mod kind {
    pub const INT: u32 = 1;
    pub const PTR: u32 = 2;
    pub const ARRAY: u32 = 3;
    pub const STRUCT: u32 = 4;
    pub const UNION: u32 = 5;
    pub const ENUM: u32 = 6;
    pub const FWD: u32 = 7;
    pub const TYPEDEF: u32 = 8;
    pub const VOLATILE: u32 = 9;
    pub const CONST: u32 = 10;
    pub const RESTRICT: u32 = 11;
    pub const FUNC: u32 = 12;
    pub const FUNC_PROTO: u32 = 13;
    pub const VAR: u32 = 14;
    pub const DATASEC: u32 = 15;
    pub const FLOAT: u32 = 16;
    pub const DECL_TAG: u32 = 17;
    pub const TYPE_TAG: u32 = 18;
    pub const ENUM64: u32 = 19;
}

/// BTF parse failures.
#[derive(Debug, thiserror::Error)]
pub enum BtfError {
    /// Could not read the file.
    #[error("cannot read {path}")]
    Read {
        /// The file.
        path: String,
        /// The OS error.
        #[source]
        source: std::io::Error,
    },
    /// Not BTF, or cut short.
    #[error("malformed BTF: {0}")]
    Malformed(String),
}

/// One type's header, decoded when asked.
#[derive(Clone, Copy, Debug)]
struct Type {
    kind: u32,
    name: u32,
    /// `size` or `type`, depending on the kind.
    size_or_type: u32,
    kind_flag: bool,
    /// STRUCT/UNION members or FUNC_PROTO params.
    vlen: u32,
    /// Where the bytes after the header start, in [`KernelBtf::data`].
    tail: u32,
}

/// A BTF blob, indexed but not decoded: one offset per type and the FUNC
/// ids by name. Types and members are decoded from the blob only when a
/// question needs them, so reading a kernel's BTF (~150k types) costs one
/// copy of the file plus 4 bytes per type, not a decoded table.
#[derive(Clone, Debug)]
pub struct KernelBtf {
    data: Vec<u8>,
    /// Where each type id's header starts in `data` (id 0, `void`, has none).
    offsets: Vec<u32>,
    /// The string section, in `data`.
    strings: std::ops::Range<usize>,
    /// FUNC type ids, sorted by name (binary-searched).
    funcs: Vec<u32>,
}

/// A function parameter.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Param {
    /// Its name ("" when BTF has none).
    pub name: String,
    /// Whether its type is a pointer to `struct <this>`.
    pub points_to_struct: Option<String>,
}

fn u16_at(data: &[u8], at: usize) -> Option<u16> {
    Some(u16::from_le_bytes(data.get(at..at + 2)?.try_into().ok()?))
}

fn u32_at(data: &[u8], at: usize) -> Option<u32> {
    Some(u32::from_le_bytes(data.get(at..at + 4)?.try_into().ok()?))
}

impl KernelBtf {
    /// Reads the running kernel's BTF.
    pub fn from_sys_fs() -> Result<Self, BtfError> {
        Self::from_file("/sys/kernel/btf/vmlinux")
    }

    /// Reads a BTF file.
    pub fn from_file(path: &str) -> Result<Self, BtfError> {
        let data = std::fs::read(path).map_err(|source| BtfError::Read {
            path: path.to_owned(),
            source,
        })?;
        Self::from_vec(data)
    }

    /// Parses a little-endian BTF blob (the kernels reaper targets are LE).
    pub fn parse(data: &[u8]) -> Result<Self, BtfError> {
        Self::from_vec(data.to_vec())
    }

    /// Indexes a little-endian BTF blob it takes ownership of.
    fn from_vec(data: Vec<u8>) -> Result<Self, BtfError> {
        let bad = |what: &str| BtfError::Malformed(what.to_owned());
        if u16_at(&data, 0) != Some(MAGIC) {
            return Err(bad("bad magic (not little-endian BTF)"));
        }
        let field = |at| u32_at(&data, at).ok_or_else(|| bad("header cut short"));
        let hdr_len = field(4)? as usize;
        let (type_off, type_len) = (field(8)? as usize, field(12)? as usize);
        let (str_off, str_len) = (field(16)? as usize, field(20)? as usize);
        let types = hdr_len + type_off..hdr_len + type_off + type_len;
        let strings = hdr_len + str_off..hdr_len + str_off + str_len;
        if data.get(types.clone()).is_none() {
            return Err(bad("type section out of bounds"));
        }
        if data.get(strings.clone()).is_none() {
            return Err(bad("string section out of bounds"));
        }
        // Type id 0 is `void`; its offset is never read.
        let mut offsets = vec![0u32];
        let mut funcs = Vec::new();
        let mut at = types.start;
        while at < types.end {
            let word = |k: usize| {
                u32_at(&data, at + 4 * k)
                    .filter(|_| at + 4 * k + 4 <= types.end)
                    .ok_or_else(|| bad("type cut short"))
            };
            let info = word(1)?;
            let vlen = (info & 0xffff) as usize;
            let kind = (info >> 24) & 0x1f;
            let extra = match kind {
                kind::INT | kind::VAR | kind::DECL_TAG => 4,
                kind::ARRAY => 12,
                kind::STRUCT | kind::UNION | kind::DATASEC | kind::ENUM64 => 12 * vlen,
                kind::FUNC_PROTO | kind::ENUM => 8 * vlen,
                kind::PTR
                | kind::FWD
                | kind::TYPEDEF
                | kind::VOLATILE
                | kind::CONST
                | kind::RESTRICT
                | kind::FUNC
                | kind::FLOAT
                | kind::TYPE_TAG => 0,
                other => return Err(BtfError::Malformed(format!("unknown kind {other}"))),
            };
            if at + 12 + extra > types.end {
                return Err(bad("type data cut short"));
            }
            if kind == kind::FUNC {
                funcs.push(offsets.len() as u32);
            }
            offsets.push(u32::try_from(at).map_err(|_| bad("BTF larger than 4 GiB"))?);
            at += 12 + extra;
        }
        let mut btf = Self {
            data,
            offsets,
            strings,
            funcs: Vec::new(),
        };
        // By name, and the last id of a repeated name first: the one kept,
        // as with the name → id map this table replaced.
        funcs.sort_by_cached_key(|&id| (btf.type_name(id), std::cmp::Reverse(id)));
        funcs.dedup_by(|a, b| btf.type_name(*a) == btf.type_name(*b));
        btf.funcs = funcs;
        Ok(btf)
    }

    fn type_name(&self, id: u32) -> &str {
        self.ty(id).map_or("", |t| self.string(t.name))
    }

    /// A STRUCT/UNION's members (name, type, bit offset) or a
    /// FUNC_PROTO's params (name, type, 0), decoded from the blob.
    fn members_of(&self, t: &Type) -> impl Iterator<Item = (u32, u32, u32)> + '_ {
        let (stride, is_proto) = match t.kind {
            kind::STRUCT | kind::UNION => (12, false),
            kind::FUNC_PROTO => (8, true),
            _ => (0, false),
        };
        let count = if stride == 0 { 0 } else { t.vlen as usize };
        let tail = t.tail as usize;
        (0..count).map(move |i| {
            let at = tail + stride * i;
            let word = |k: usize| u32_at(&self.data, at + 4 * k).unwrap_or(0);
            (word(0), word(1), if is_proto { 0 } else { word(2) })
        })
    }

    /// The FUNC type id of a function name.
    fn func_id(&self, name: &str) -> Option<u32> {
        self.funcs
            .binary_search_by(|&id| self.type_name(id).cmp(name))
            .ok()
            .map(|i| self.funcs[i])
    }

    fn string(&self, offset: u32) -> &str {
        let rest = self
            .data
            .get(self.strings.start + offset as usize..self.strings.end)
            .unwrap_or_default();
        let end = rest.iter().position(|&b| b == 0).unwrap_or(rest.len());
        std::str::from_utf8(&rest[..end]).unwrap_or("")
    }

    fn ty(&self, id: u32) -> Option<Type> {
        if id == 0 {
            return Some(Type {
                kind: 0,
                name: 0,
                size_or_type: 0,
                kind_flag: false,
                vlen: 0,
                tail: 0,
            });
        }
        let at = *self.offsets.get(id as usize)? as usize;
        let info = u32_at(&self.data, at + 4)?;
        Some(Type {
            kind: (info >> 24) & 0x1f,
            name: u32_at(&self.data, at)?,
            size_or_type: u32_at(&self.data, at + 8)?,
            kind_flag: info >> 31 == 1,
            vlen: info & 0xffff,
            tail: (at + 12) as u32,
        })
    }

    /// Follows typedefs and qualifiers.
    fn strip(&self, mut id: u32) -> Option<Type> {
        for _ in 0..32 {
            let t = self.ty(id)?;
            match t.kind {
                kind::TYPEDEF | kind::VOLATILE | kind::CONST | kind::RESTRICT | kind::TYPE_TAG => {
                    id = t.size_or_type;
                }
                _ => return Some(t),
            }
        }
        None
    }

    /// Whether BTF describes a function of this name (fentry's requirement).
    pub fn has_function(&self, name: &str) -> bool {
        self.func_id(name).is_some()
    }

    /// The BTF type id of a function (the low bits of its fentry
    /// trampoline's key).
    pub fn function_id(&self, name: &str) -> Option<u32> {
        self.func_id(name)
    }

    /// The TYPEDEF type id of a name: tp_btf programs attach to the
    /// `btf_trace_<tracepoint>` typedef. A linear scan (doctor makes one
    /// such lookup), the first match, as aya's lookup took it.
    pub fn typedef_id(&self, name: &str) -> Option<u32> {
        (1..self.offsets.len() as u32).find(|&id| {
            self.ty(id)
                .is_some_and(|t| t.kind == kind::TYPEDEF && self.string(t.name) == name)
        })
    }

    /// Every function name (for fixtures and tests).
    pub fn function_names(&self) -> impl Iterator<Item = &str> {
        self.funcs.iter().map(|&id| self.type_name(id))
    }

    /// The parameters of a function, in order.
    pub fn params(&self, function: &str) -> Option<Vec<Param>> {
        let func = self.ty(self.func_id(function)?)?;
        let proto = self.ty(func.size_or_type)?;
        if proto.kind != kind::FUNC_PROTO {
            return None;
        }
        Some(
            self.members_of(&proto)
                .map(|(name, ty, _)| self.param(self.string(name).to_owned(), ty))
                .collect(),
        )
    }

    /// Byte offset of `member` in `struct name`, looking inside anonymous
    /// structs and unions.
    pub fn member_offset(&self, name: &str, member: &str) -> Option<u32> {
        let st = (1..self.offsets.len() as u32)
            .filter_map(|id| self.ty(id))
            .find(|t| t.kind == kind::STRUCT && t.vlen > 0 && self.string(t.name) == name)?;
        self.find_member(&st, member, 0, 0).map(|bits| bits / 8)
    }

    fn find_member(&self, st: &Type, member: &str, base_bits: u32, depth: u32) -> Option<u32> {
        if depth > 8 {
            return None;
        }
        for (name, ty, offset) in self.members_of(st) {
            // With kind_flag set, the low 24 bits are the bit offset.
            let bits = base_bits
                + if st.kind_flag {
                    offset & 0xff_ffff
                } else {
                    offset
                };
            let member_name = self.string(name);
            if member_name == member {
                return Some(bits);
            }
            if member_name.is_empty()
                && let Some(inner) = self
                    .strip(ty)
                    .filter(|t| matches!(t.kind, kind::STRUCT | kind::UNION))
                && let Some(found) = self.find_member(&inner, member, bits, depth + 1)
            {
                return Some(found);
            }
        }
        None
    }
}

impl crate::catalog::BtfSource for KernelBtf {
    fn function_exists(&self, name: &str) -> bool {
        self.has_function(name)
    }

    fn function_params(&self, function: &str) -> Option<Vec<(String, Option<String>)>> {
        self.params(function).map(|params| {
            params
                .into_iter()
                .map(|p| (p.name, p.points_to_struct))
                .collect()
        })
    }

    fn struct_member_offset(&self, name: &str, member: &str) -> Option<u32> {
        self.member_offset(name, member)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Builds a BTF blob: `struct vm_area_struct { union { struct {
    /// unsigned long vm_start; unsigned long vm_end; }; void *p; }; long x; }`
    /// and `int zap(struct vm_area_struct *vma)`.
    fn synthetic() -> Vec<u8> {
        let mut strings =
            b"\0vm_area_struct\0vm_start\0vm_end\0x\0zap\0vma\0long\0btf_trace_zap\0".to_vec();
        let s = |name: &str, strings: &[u8]| -> u32 {
            let needle = format!("\0{name}\0");
            strings
                .windows(needle.len())
                .position(|w| w == needle.as_bytes())
                .unwrap() as u32
                + 1
        };
        let trace_zap = s("btf_trace_zap", &strings);
        let (vas, start, end, x, zap, vma, long) = (
            s("vm_area_struct", &strings),
            s("vm_start", &strings),
            s("vm_end", &strings),
            s("x", &strings),
            s("zap", &strings),
            s("vma", &strings),
            s("long", &strings),
        );
        strings.push(0);
        let mut t = Vec::new();
        let mut push = |words: &[u32]| {
            for w in words {
                t.extend_from_slice(&w.to_le_bytes());
            }
        };
        let info = |kind: u32, vlen: u32| (kind << 24) | vlen;
        // 1: long (INT, 8 bytes)
        push(&[long, info(kind::INT, 0), 8, 64]);
        // 2: anonymous struct { vm_start; vm_end; }
        push(&[0, info(kind::STRUCT, 2), 16, start, 1, 0, end, 1, 64]);
        // 3: void * (PTR to void)
        push(&[0, info(kind::PTR, 0), 0]);
        // 4: anonymous union { struct 2; void *p; }
        push(&[0, info(kind::UNION, 2), 16, 0, 2, 0, x, 3, 0]);
        // 5: struct vm_area_struct { long x; union 4 at 64 bits }
        push(&[vas, info(kind::STRUCT, 2), 24, x, 1, 0, 0, 4, 64]);
        // 6: PTR to 5
        push(&[0, info(kind::PTR, 0), 5]);
        // 7: FUNC_PROTO int (struct vm_area_struct *vma)
        push(&[0, info(kind::FUNC_PROTO, 1), 1, vma, 6]);
        // 8: FUNC zap
        push(&[zap, info(kind::FUNC, 1), 7]);
        // 9: typedef btf_trace_zap (to 6, as a tracepoint's is to a function pointer)
        push(&[trace_zap, info(kind::TYPEDEF, 0), 6]);
        let mut blob = Vec::new();
        blob.extend_from_slice(&MAGIC.to_le_bytes());
        blob.extend_from_slice(&[1, 0]);
        for w in [
            24u32,
            0,
            t.len() as u32,
            t.len() as u32,
            strings.len() as u32,
        ] {
            blob.extend_from_slice(&w.to_le_bytes());
        }
        blob.extend_from_slice(&t);
        blob.extend_from_slice(&strings);
        blob
    }

    #[test]
    fn finds_members_inside_anonymous_unions() {
        let btf = KernelBtf::parse(&synthetic()).unwrap();
        assert_eq!(btf.member_offset("vm_area_struct", "vm_start"), Some(8));
        assert_eq!(btf.member_offset("vm_area_struct", "vm_end"), Some(16));
        assert_eq!(btf.member_offset("vm_area_struct", "nope"), None);
        assert!(btf.has_function("zap"));
        assert!(!btf.has_function("vm_start"));
        assert_eq!(
            btf.params("zap").unwrap(),
            vec![Param {
                name: "vma".into(),
                points_to_struct: Some("vm_area_struct".into())
            }]
        );
    }

    #[test]
    fn finds_a_typedef_by_name_and_kind() {
        let btf = KernelBtf::parse(&synthetic()).unwrap();
        assert_eq!(btf.typedef_id("btf_trace_zap"), Some(9));
        assert_eq!(btf.function_id("zap"), Some(8));
        // A FUNC is not a TYPEDEF, nor the other way round.
        assert_eq!(btf.typedef_id("zap"), None);
        assert_eq!(btf.function_id("btf_trace_zap"), None);
    }

    /// The ids fentry/fexit and tp_btf programs now load by are the ones
    /// aya's own lookup gave on the running kernel (skips without BTF).
    #[test]
    fn running_kernel_ids_match_ayas_lookup() {
        let (Ok(ours), Ok(ayas)) = (KernelBtf::from_sys_fs(), aya::Btf::from_sys_fs()) else {
            eprintln!("skipped: no readable /sys/kernel/btf/vmlinux");
            return;
        };
        use aya_obj::btf::BtfKind;
        for function in [
            "exit_mmap",
            "unmap_vmas",
            "tlb_finish_mmu",
            "__oom_reap_task_mm",
        ] {
            let theirs = ayas.id_by_type_name_kind(function, BtfKind::Func).ok();
            if theirs.is_some() {
                assert_eq!(ours.function_id(function), theirs, "{function}");
            }
        }
        let tracepoint = "btf_trace_sched_process_exit";
        assert_eq!(
            ours.typedef_id(tracepoint),
            ayas.id_by_type_name_kind(tracepoint, BtfKind::Typedef).ok()
        );
        assert!(ours.typedef_id(tracepoint).is_some());
    }

    #[test]
    fn rejects_garbage() {
        assert!(KernelBtf::parse(b"not btf at all, really").is_err());
        let mut cut = synthetic();
        cut.truncate(40);
        assert!(KernelBtf::parse(&cut).is_err());
    }

    /// The running kernel's BTF, when there is one (skips with a reason).
    #[test]
    fn running_kernel_has_vm_start() {
        let Ok(btf) = KernelBtf::from_sys_fs() else {
            eprintln!("skipped: no readable /sys/kernel/btf/vmlinux");
            return;
        };
        assert!(btf.member_offset("vm_area_struct", "vm_start").is_some());
        assert!(btf.has_function("exit_mmap"));
    }
}
