//! What raw tracepoints need from kernel BTF: each tracepoint's `TP_PROTO`
//! (the kernel declares `typedef void (*btf_trace_<event>)(void *__data,
//! <TP_PROTO>)` for every tracepoint) and struct member offsets, each set
//! found in one pass over the types.

use super::{KernelBtf, Param, kind};

/// Prefix of the typedef the kernel declares per tracepoint
/// (include/linux/tracepoint.h, `DEFINE_EVENT`/`__DECLARE_TRACE`).
const TRACE_TYPEDEF_PREFIX: &str = "btf_trace_";

impl KernelBtf {
    /// The `TP_PROTO` arguments of each event (by tracepoint name, e.g.
    /// "mark_victim"), `None` for an event BTF does not describe. Arguments
    /// carry no names in BTF, only types.
    pub fn tracepoint_protos(&self, events: &[&str]) -> Vec<Option<Vec<Param>>> {
        let mut found: Vec<Option<Vec<Param>>> = vec![None; events.len()];
        for id in 1..self.offsets.len() as u32 {
            let Some(t) = self.ty(id) else { continue };
            if t.kind != kind::TYPEDEF {
                continue;
            }
            let Some(event) = self.string(t.name).strip_prefix(TRACE_TYPEDEF_PREFIX) else {
                continue;
            };
            let Some(slot) = events.iter().position(|e| *e == event) else {
                continue;
            };
            let proto = self
                .strip(t.size_or_type)
                .filter(|p| p.kind == kind::PTR)
                .and_then(|p| self.strip(p.size_or_type))
                .filter(|p| p.kind == kind::FUNC_PROTO);
            found[slot] = proto.map(|proto| {
                self.members_of(&proto)
                    // The first parameter is the probe's `void *__data`.
                    .skip(1)
                    .map(|(_, ty, _)| self.param(String::new(), ty))
                    .collect()
            });
        }
        found
    }

    /// Byte offsets of several `(struct, member)` pairs, the structs found
    /// in one pass; see [`KernelBtf::member_offset`].
    pub fn member_offsets(&self, wanted: &[(&str, &str)]) -> Vec<Option<u32>> {
        let mut structs = vec![None; wanted.len()];
        for id in 1..self.offsets.len() as u32 {
            let Some(t) = self.ty(id) else { continue };
            if t.kind != kind::STRUCT || t.vlen == 0 {
                continue;
            }
            let name = self.string(t.name);
            for (slot, (wanted_struct, _)) in wanted.iter().enumerate() {
                if structs[slot].is_none() && *wanted_struct == name {
                    structs[slot] = Some(t);
                }
            }
            if structs.iter().all(Option::is_some) {
                break;
            }
        }
        structs
            .iter()
            .zip(wanted)
            .map(|(st, (_, member))| {
                self.find_member(st.as_ref()?, member, 0, 0)
                    .map(|bits| bits / 8)
            })
            .collect()
    }

    /// One parameter called `name`, of type `ty`.
    pub(super) fn param(&self, name: String, ty: u32) -> Param {
        Param {
            name,
            points_to_struct: self
                .strip(ty)
                .filter(|t| t.kind == kind::PTR)
                .and_then(|t| self.strip(t.size_or_type))
                .filter(|t| t.kind == kind::STRUCT)
                .map(|t| self.string(t.name).to_owned()),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// The running kernel's BTF, when there is one (skips with a reason).
    #[test]
    fn running_kernel_describes_the_tracepoints_reaper_uses() {
        let Ok(btf) = KernelBtf::from_sys_fs() else {
            eprintln!("skipped: no readable /sys/kernel/btf/vmlinux");
            return;
        };
        let protos = btf.tracepoint_protos(&["sys_enter", "contention_begin", "no_such_event"]);
        let sys_enter = protos[0].as_ref().expect("sys_enter in BTF");
        assert_eq!(sys_enter.len(), 2);
        assert_eq!(sys_enter[0].points_to_struct.as_deref(), Some("pt_regs"));
        assert_eq!(sys_enter[1].points_to_struct, None);
        assert_eq!(protos[1].as_ref().map(Vec::len), Some(2));
        assert_eq!(protos[2], None);
        let offsets = btf.member_offsets(&[("task_struct", "pid"), ("task_struct", "nope")]);
        assert!(offsets[0].is_some_and(|o| o > 0), "{offsets:?}");
        assert_eq!(offsets[1], None);
        assert_eq!(
            offsets[0],
            btf.member_offset("task_struct", "pid"),
            "the one-pass lookup agrees with the single one"
        );
    }
}
