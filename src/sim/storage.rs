//! The modem's message memories ("SM" on the SIM card, "ME" in the module): fixed slot counts,
//! indices starting where the profile starts them, and the four 27.005 message states.

/// 27.005 §3.1 <stat> in PDU mode.
pub(crate) const REC_UNREAD: u8 = 0;
pub(crate) const REC_READ: u8 = 1;
pub(crate) const STO_UNSENT: u8 = 2;
pub(crate) const STO_SENT: u8 = 3;

#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct Stored {
    pub stat: u8,
    /// SMSC field followed by the TPDU.
    pub pdu: Vec<u8>,
}

impl Stored {
    /// TPDU length, as +CMGR / +CMGL / +CMT print it.
    pub fn tpdu_len(&self) -> usize {
        let smsc = self.pdu.first().copied().unwrap_or(0) as usize;
        self.pdu.len().saturating_sub(1 + smsc)
    }
}

#[derive(Debug, Clone)]
pub(crate) struct Memory {
    pub name: &'static str,
    base: usize,
    slots: Vec<Option<Stored>>,
}

impl Memory {
    pub fn new(name: &'static str, capacity: usize, base: usize) -> Self {
        Memory {
            name,
            base,
            slots: vec![None; capacity],
        }
    }

    pub fn capacity(&self) -> usize {
        self.slots.len()
    }

    pub fn used(&self) -> usize {
        self.slots.iter().filter(|s| s.is_some()).count()
    }

    /// Store in the lowest free slot; the index as the modem prints it, or None when full.
    pub fn store(&mut self, message: Stored) -> Option<usize> {
        let free = self.slots.iter().position(Option::is_none)?;
        self.slots[free] = Some(message);
        Some(free + self.base)
    }

    fn slot(&self, index: usize) -> Option<usize> {
        index
            .checked_sub(self.base)
            .filter(|i| *i < self.slots.len())
    }

    /// Err(()) when the index is outside the memory; Ok(None) for an empty slot.
    #[allow(clippy::result_unit_err)]
    pub fn get_mut(&mut self, index: usize) -> Result<Option<&mut Stored>, ()> {
        let i = self.slot(index).ok_or(())?;
        Ok(self.slots[i].as_mut())
    }

    /// Err(()) when the index is outside the memory; deleting an empty slot is fine.
    #[allow(clippy::result_unit_err)]
    pub fn delete(&mut self, index: usize) -> Result<(), ()> {
        let i = self.slot(index).ok_or(())?;
        self.slots[i] = None;
        Ok(())
    }

    /// AT+CMGD=<i>,<flag> with flag 1..4: delete by state.
    pub fn delete_by_flag(&mut self, flag: u8) {
        for slot in &mut self.slots {
            let drop = match slot {
                Some(m) => match flag {
                    1 => m.stat == REC_READ,
                    2 => m.stat == REC_READ || m.stat == STO_SENT,
                    3 => m.stat != REC_UNREAD,
                    _ => true,
                },
                None => false,
            };
            if drop {
                *slot = None;
            }
        }
    }

    /// (index, message) for every message whose stat matches (`4` = all).
    pub fn list_mut(&mut self, stat: u8) -> impl Iterator<Item = (usize, &mut Stored)> {
        let base = self.base;
        self.slots
            .iter_mut()
            .enumerate()
            .filter_map(move |(i, s)| match s {
                Some(m) if stat == 4 || m.stat == stat => Some((i + base, m)),
                _ => None,
            })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn msg(stat: u8) -> Stored {
        Stored {
            stat,
            pdu: vec![0, 4, 1, 2],
        }
    }

    #[test]
    fn slots_fill_lowest_first_and_respect_base() {
        let mut m = Memory::new("SM", 2, 1);
        assert_eq!(m.store(msg(REC_UNREAD)), Some(1));
        assert_eq!(m.store(msg(REC_READ)), Some(2));
        assert_eq!(m.store(msg(REC_READ)), None);
        assert_eq!(m.delete(1), Ok(()));
        assert_eq!(m.store(msg(STO_SENT)), Some(1));
        assert!(m.get_mut(0).is_err());
        assert!(m.get_mut(3).is_err());
        assert_eq!(m.get_mut(2).map(|s| s.map(|s| s.stat)), Ok(Some(REC_READ)));
        assert_eq!(m.list_mut(4).count(), 2);
        m.delete_by_flag(1);
        assert_eq!(m.used(), 1);
        m.delete_by_flag(4);
        assert_eq!(m.used(), 0);
        assert_eq!(msg(0).tpdu_len(), 3);
    }
}
