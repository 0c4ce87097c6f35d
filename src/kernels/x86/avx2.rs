use crate::kernels::{reference, Isa, KernelTable};
pub(crate) const TABLE: KernelTable = KernelTable {
    isa: Isa::Avx2,
    ..reference::TABLE
};
