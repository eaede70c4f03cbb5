/*
 * A C host of equivariant.h, run by tests/abi.rs: reads a checkpoint path and two systems
 * (a periodic structure, and a domain's local and ghost atoms with their neighbour lists)
 * from the file given as argv[1], computes both through the C ABI, and prints each result as
 * a line "<name> <values...>" (%.17g). Then feeds the ABI bad input and prints
 * "error <case> <code> <message>" for each. Exits 1 if a call that should succeed fails.
 */
#include <math.h>
#include <stdio.h>
#include <stdlib.h>

#include "equivariant.h"

static FILE *input;

static int read_int(void) {
  int x;
  if (fscanf(input, "%d", &x) != 1) {
    fprintf(stderr, "malformed input\n");
    exit(2);
  }
  return x;
}

static double read_double(void) {
  double x;
  if (fscanf(input, "%lf", &x) != 1) {
    fprintf(stderr, "malformed input\n");
    exit(2);
  }
  return x;
}

static int *read_ints(int n) {
  int *x = malloc(sizeof(int) * (size_t)(n > 0 ? n : 1));
  for (int i = 0; i < n; i++) x[i] = read_int();
  return x;
}

static double *read_doubles(int n) {
  double *x = malloc(sizeof(double) * (size_t)(n > 0 ? n : 1));
  for (int i = 0; i < n; i++) x[i] = read_double();
  return x;
}

static void print(const char *name, const double *x, int n) {
  printf("%s", name);
  for (int i = 0; i < n; i++) printf(" %.17g", x[i]);
  printf("\n");
}

static void check(int32_t code, const char *what) {
  if (code != EQUIVARIANT_OK) {
    fprintf(stderr, "%s failed (%d): %s\n", what, code, equivariant_last_error());
    exit(1);
  }
}

static void report(const char *name, int32_t code) {
  printf("error %s %d %s\n", name, code, equivariant_last_error());
}

int main(int argc, char **argv) {
  char checkpoint[4096], garbage[4096];
  if (argc != 2 || !(input = fopen(argv[1], "r"))) {
    fprintf(stderr, "usage: abi_check INPUT\n");
    return 2;
  }
  if (fscanf(input, "%4095s %4095s", checkpoint, garbage) != 2) return 2;

  EquivariantModel *model = NULL;
  check(equivariant_model_load(checkpoint, 64, &model), "load");
  double cutoff;
  int32_t layers, num_species;
  check(equivariant_model_cutoff(model, &cutoff), "cutoff");
  check(equivariant_model_num_layers(model, &layers), "num_layers");
  check(equivariant_model_num_species(model, &num_species), "num_species");
  printf("cutoff %.17g\nnum_layers %d\nnum_species %d\n", cutoff, layers, num_species);
  for (int32_t t = 0; t < num_species; t++) {
    const char *symbol;
    int32_t index = -1;
    check(equivariant_model_species_symbol(model, t, &symbol), "species_symbol");
    check(equivariant_model_species_index(model, symbol, &index), "species_index");
    printf("species %d %s %d\n", t, symbol, index);
  }

  /* A periodic structure. */
  int n = read_int();
  int *species = read_ints(n);
  double *positions = read_doubles(3 * n);
  double *cell = read_doubles(9);
  double energy, virial[9];
  double *atom_energies = malloc(sizeof(double) * (size_t)n);
  double *forces = malloc(sizeof(double) * 3 * (size_t)n);
  double *atom_virials = malloc(sizeof(double) * 9 * (size_t)n);
  check(equivariant_model_compute_structure(model, n, species, positions, cell, NULL, &energy,
                                            atom_energies, forces, virial, atom_virials),
        "compute_structure");
  print("structure_energy", &energy, 1);
  print("structure_atom_energies", atom_energies, n);
  print("structure_forces", forces, 3 * n);
  print("structure_virial", virial, 9);
  print("structure_atom_virials", atom_virials, 9 * n);

  /* A domain: local and ghost atoms with full neighbour lists. */
  int m = read_int();
  int *contributing = read_ints(m);
  int *domain_species = read_ints(m);
  double *domain_positions = read_doubles(3 * m);
  int *counts = read_ints(m);
  int total = 0;
  for (int i = 0; i < m; i++) total += counts[i];
  int *neighbors = read_ints(total);
  double *domain_energies = malloc(sizeof(double) * (size_t)m);
  double *domain_forces = malloc(sizeof(double) * 3 * (size_t)m);
  double *domain_atom_virials = malloc(sizeof(double) * 9 * (size_t)m);
  check(equivariant_model_compute(model, m, domain_species, domain_positions, contributing, counts,
                                  neighbors, &energy, domain_energies, domain_forces, virial,
                                  domain_atom_virials),
        "compute");
  print("domain_energy", &energy, 1);
  print("domain_atom_energies", domain_energies, m);
  print("domain_forces", domain_forces, 3 * m);
  print("domain_virial", virial, 9);
  print("domain_atom_virials", domain_atom_virials, 9 * m);
  /* Only the energy, every other output NULL. */
  double energy_only;
  check(equivariant_model_compute(model, m, domain_species, domain_positions, contributing, counts,
                                  neighbors, &energy_only, NULL, NULL, NULL, NULL),
        "compute (energy only)");
  print("domain_energy_only", &energy_only, 1);

  /* Bad input: each an error code and a message, the process alive. */
  EquivariantModel *other = NULL;
  report("missing_checkpoint", equivariant_model_load("/no/such/checkpoint", 0, &other));
  report("garbage_checkpoint", equivariant_model_load(garbage, 0, &other));
  report("null_path", equivariant_model_load(NULL, 0, &other));
  report("null_model", equivariant_model_cutoff(NULL, &cutoff));
  int32_t index;
  report("unknown_species", equivariant_model_species_index(model, "Xx", &index));
  report("negative_atoms", equivariant_model_compute(model, -1, species, positions, NULL, counts,
                                                     neighbors, &energy, NULL, NULL, NULL, NULL));
  int bad_species = species[0];
  species[0] = num_species;
  report("species_out_of_range",
         equivariant_model_compute_structure(model, n, species, positions, cell, NULL, &energy,
                                             NULL, NULL, NULL, NULL));
  species[0] = bad_species;
  report("null_positions", equivariant_model_compute_structure(model, n, species, NULL, cell, NULL,
                                                                &energy, NULL, NULL, NULL, NULL));
  double saved = positions[0];
  positions[0] = NAN;
  report("nan_position", equivariant_model_compute_structure(model, n, species, positions, cell,
                                                              NULL, &energy, NULL, NULL, NULL, NULL));
  positions[0] = saved;
  int saved_neighbor = neighbors[0];
  neighbors[0] = m;
  report("neighbor_out_of_range",
         equivariant_model_compute(model, m, domain_species, domain_positions, contributing, counts,
                                   neighbors, &energy, NULL, NULL, NULL, NULL));
  neighbors[0] = saved_neighbor;
  /* The model still works after the errors. */
  double again;
  check(equivariant_model_compute_structure(model, n, species, positions, cell, NULL, &again, NULL,
                                            NULL, NULL, NULL),
        "compute_structure after errors");
  print("structure_energy_again", &again, 1);

  equivariant_model_free(model);
  equivariant_model_free(NULL);
  free(species);
  free(positions);
  free(cell);
  free(atom_energies);
  free(forces);
  free(atom_virials);
  free(domain_atom_virials);
  free(contributing);
  free(domain_species);
  free(domain_positions);
  free(counts);
  free(neighbors);
  free(domain_energies);
  free(domain_forces);
  fclose(input);
  return 0;
}
