//! The integration tests of `equivariant-train`, one binary (one link of burn) with a module
//! per topic: the optimizer, weight average and schedules against torch; training runs.

mod train_tests;
