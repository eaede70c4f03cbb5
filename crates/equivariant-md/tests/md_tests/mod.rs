mod calculator;
mod common;
mod langevin;
mod neighbor_list;
mod verlet;
