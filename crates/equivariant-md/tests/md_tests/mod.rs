mod calculator;
mod common;
mod langevin;
mod verlet;
