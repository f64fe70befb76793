//! A small reader of little-endian ELF files (32- and 64-bit), enough to find a
//! binary's sections and the section each symbol lives in. Used by
//! `tests/static_image.rs` to check that empty statics land in `.bss`.

use std::path::Path;

/// One section: its name and size in bytes.
#[derive(Debug, Clone)]
pub struct Section {
    /// `.text`, `.data`, `.bss`, ...
    pub name: String,
    /// Size in bytes (for `.bss`, what it takes in memory).
    pub size: u64,
}

/// An ELF file's sections and symbols.
pub struct Elf {
    bytes: Vec<u8>,
    wide: bool,
    sections: Vec<(Section, u64, u64, u32, u32)>, // (section, offset, type, link, entsize)
}

impl Elf {
    /// Reads and checks the file; panics with the path on anything unexpected.
    pub fn read(path: &Path) -> Elf {
        let bytes = std::fs::read(path).unwrap_or_else(|e| panic!("read {}: {e}", path.display()));
        assert_eq!(
            &bytes[..4],
            b"\x7fELF",
            "{} is not an ELF file",
            path.display()
        );
        assert_eq!(bytes[5], 1, "little-endian ELF expected");
        let wide = match bytes[4] {
            1 => false,
            2 => true,
            c => panic!("unknown ELF class {c}"),
        };
        let mut elf = Elf {
            bytes,
            wide,
            sections: Vec::new(),
        };
        elf.sections = elf.read_sections();
        elf
    }

    fn u16_at(&self, o: usize) -> u64 {
        u64::from(u16::from_le_bytes([self.bytes[o], self.bytes[o + 1]]))
    }

    fn u32_at(&self, o: usize) -> u64 {
        u64::from(u32::from_le_bytes(self.bytes[o..o + 4].try_into().unwrap()))
    }

    fn word(&self, o: usize) -> u64 {
        if self.wide {
            u64::from_le_bytes(self.bytes[o..o + 8].try_into().unwrap())
        } else {
            self.u32_at(o)
        }
    }

    fn c_str(&self, at: usize) -> String {
        let end = self.bytes[at..].iter().position(|&b| b == 0).unwrap() + at;
        String::from_utf8_lossy(&self.bytes[at..end]).into_owned()
    }

    fn read_sections(&self) -> Vec<(Section, u64, u64, u32, u32)> {
        // e_shoff, e_shentsize, e_shnum, e_shstrndx
        let (shoff, shentsize, shnum, shstrndx) = if self.wide {
            (
                self.word(0x28),
                self.u16_at(0x3A),
                self.u16_at(0x3C),
                self.u16_at(0x3E),
            )
        } else {
            (
                self.word(0x20),
                self.u16_at(0x2E),
                self.u16_at(0x30),
                self.u16_at(0x32),
            )
        };
        // Within a section header: sh_name 0, sh_type 4, then flags and address
        // words, sh_offset, sh_size, sh_link, sh_info, sh_addralign, sh_entsize.
        let (off_at, size_at, link_at, entsize_at) = if self.wide {
            (0x18, 0x20, 0x28, 0x38)
        } else {
            (0x10, 0x14, 0x18, 0x24)
        };
        let header = |i: u64| (shoff + i * shentsize) as usize;
        let names = self.word(header(shstrndx) + off_at) as usize;
        (0..shnum)
            .map(|i| {
                let h = header(i);
                let section = Section {
                    name: self.c_str(names + self.u32_at(h) as usize),
                    size: self.word(h + size_at),
                };
                let ty = self.u32_at(h + 4);
                let link = self.u32_at(h + link_at) as u32;
                let entsize = self.word(h + entsize_at) as u32;
                (section, self.word(h + off_at), ty, link, entsize)
            })
            .collect()
    }

    /// The section named `name`, if there is one.
    pub fn section(&self, name: &str) -> Option<&Section> {
        self.sections
            .iter()
            .map(|(s, ..)| s)
            .find(|s| s.name == name)
    }

    /// The name of the section holding the first symbol whose (mangled) name
    /// contains `part`, and the symbol's size; `None` if no such symbol (or no
    /// symbol table: a stripped binary).
    pub fn symbol_section(&self, part: &str) -> Option<(String, u64)> {
        const SYMTAB: u64 = 2;
        let (symtab, offset, _, link, entsize) =
            self.sections.iter().find(|(_, _, ty, ..)| *ty == SYMTAB)?;
        let strtab_off = self.sections.get(*link as usize)?.1 as usize;
        let n = symtab.size / u64::from(*entsize);
        for i in 0..n {
            let at = (*offset + i * u64::from(*entsize)) as usize;
            // Elf64_Sym: name u32, info u8, other u8, shndx u16, value u64, size u64.
            // Elf32_Sym: name u32, value u32, size u32, info u8, other u8, shndx u16.
            let (shndx, size) = if self.wide {
                (self.u16_at(at + 6), self.word(at + 16))
            } else {
                (self.u16_at(at + 14), self.u32_at(at + 8))
            };
            let name = self.c_str(strtab_off + self.u32_at(at) as usize);
            if name.contains(part) {
                let section = self.sections.get(shndx as usize)?;
                return Some((section.0.name.clone(), size));
            }
        }
        None
    }
}
