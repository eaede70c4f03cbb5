//! Tests of the C ABI: domains of local and ghost atoms against the whole structure, and a C
//! program calling the library through `include/equivariant.h`.

mod capi_tests;
