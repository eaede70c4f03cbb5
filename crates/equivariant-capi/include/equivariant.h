/*
 * equivariant.h: the C ABI of equivariant, a trained interatomic potential for MD engines.
 *
 * Units: positions, cutoffs in Å; energies in eV; forces in eV/Å; virial in eV.
 *
 * Every function returns EQUIVARIANT_OK (0) or an error code; after an error,
 * equivariant_last_error() gives a message naming what was wrong (valid on the calling thread
 * until its next call into this library). No function aborts the host process: a Rust panic
 * is caught and returned as EQUIVARIANT_ERROR_INTERNAL.
 *
 * A model may be used from several threads; calls on one model are serialized.
 *
 * Arrays are passed with their counts (num_atoms, num_neighbors): a count is checked (not
 * negative, indices in range), but C cannot check that an array holds as many values as its
 * count says; the caller must pass arrays of the documented lengths.
 */
#ifndef EQUIVARIANT_H
#define EQUIVARIANT_H

#include <stdint.h>

#ifdef __cplusplus
extern "C" {
#endif

/* Return codes. */
#define EQUIVARIANT_OK 0
/* A pointer argument that must not be NULL was NULL. */
#define EQUIVARIANT_ERROR_NULL_POINTER 1
/* An argument's value is wrong: a negative count, a species index out of range, an unknown
 * chemical symbol, a NaN position, a neighbour index out of range, two atoms at one place,
 * a string that is not UTF-8. */
#define EQUIVARIANT_ERROR_INVALID_ARGUMENT 2
/* The checkpoint could not be loaded: missing, truncated, foreign or unreadable. */
#define EQUIVARIANT_ERROR_LOAD 3
/* A bug in the library (a caught panic). */
#define EQUIVARIANT_ERROR_INTERNAL 4

/* A loaded checkpoint of `equivariant train`. */
typedef struct EquivariantModel EquivariantModel;

/* The message of the last failed call on this thread ("" if none). */
const char *equivariant_last_error(void);

/* Loads the checkpoint at `path` (a NUL-terminated UTF-8 path) to run in f32 (`dtype_bits` 32),
 * f64 (64) or the checkpoint's own dtype (0). On success `*model` owns the model; free it
 * with equivariant_model_free. */
int32_t equivariant_model_load(const char *path, int32_t dtype_bits, EquivariantModel **model);

/* Frees a model from equivariant_model_load (NULL is ignored). */
void equivariant_model_free(EquivariantModel *model);

/* The cutoff radius r_max of the model's radius graph (Å). */
int32_t equivariant_model_cutoff(const EquivariantModel *model, double *cutoff);

/* The number of message-passing layers L. An atom's energy depends on the atoms within
 * L * r_max of it (the influence distance): a domain's ghost atoms must reach that far. */
int32_t equivariant_model_num_layers(const EquivariantModel *model, int32_t *num_layers);

/* The number of species the model knows; their type indices are 0..num_species-1. */
int32_t equivariant_model_num_species(const EquivariantModel *model, int32_t *num_species);

/* The chemical symbol of type index `index`, NUL-terminated, owned by the model. */
int32_t equivariant_model_species_symbol(const EquivariantModel *model, int32_t index,
                                         const char **symbol);

/* The type index of chemical symbol `symbol` (an error for a species the model does not
 * know). */
int32_t equivariant_model_species_index(const EquivariantModel *model, const char *symbol,
                                        int32_t *index);

/* Energy, per-atom energies, forces and virial of atoms given with a neighbour list, as an
 * MD engine with domain decomposition has them: its local atoms and the ghost atoms around
 * them (periodic images and other domains' atoms, as explicit copies).
 *
 *   num_atoms      n, local and ghost atoms together
 *   species        [n] type indices
 *   positions      [n * 3] Cartesian positions, row-major
 *   contributing   [n] 1 for an atom whose energy is counted (a local atom), 0 for a ghost;
 *                  NULL: every atom counts
 *   num_neighbors  [n] the number of neighbours listed for each atom
 *   neighbors      [sum num_neighbors] for each atom in turn, the indices of its neighbours:
 *                  every atom closer than r_max (a full list: j in i's list and i in j's);
 *                  farther ones may be listed (a skin) and are ignored; may be NULL when
 *                  every count is 0
 *
 * Outputs (each may be NULL when not wanted):
 *   energy         [1] the sum of the contributing atoms' energies
 *   atom_energies  [n] each atom's energy (0 for a ghost)
 *   forces         [n * 3] -dE/dx for every atom, ghosts included (an MD engine adds a
 *                  ghost's force to the atom it copies)
 *   virial         [9] row-major W = -sum_e r_e (x) dE/dr_e over the edges (r_e from an atom
 *                  to its neighbour): LAMMPS's and ASE's sign, stress = -W / volume
 *   atom_virials   [n * 9] each atom's share of W, row-major 3x3 per atom: half of each of
 *                  its edges' -r_e (x) dE/dr_e (they sum to W; a ghost's share belongs to the
 *                  atom it copies, as its force does)
 *
 * The neighbours of ghosts are needed as far as the influence distance (the neighbour list of
 * ghosts within (L - 1) * r_max of a local atom): without them the local energies are wrong. */
int32_t equivariant_model_compute(const EquivariantModel *model, int32_t num_atoms,
                                  const int32_t *species, const double *positions,
                                  const int32_t *contributing, const int32_t *num_neighbors,
                                  const int32_t *neighbors, double *energy,
                                  double *atom_energies, double *forces, double *virial,
                                  double *atom_virials);

/* The same for a whole structure, the library building the neighbour list: `cell` [9]
 * row-major lattice vectors (rows; NULL for an isolated structure) periodic along the axes
 * where pbc[axis] is 1 (`pbc` [3], NULL: all three if `cell` is given). */
int32_t equivariant_model_compute_structure(const EquivariantModel *model, int32_t num_atoms,
                                            const int32_t *species, const double *positions,
                                            const double *cell, const int32_t *pbc,
                                            double *energy, double *atom_energies,
                                            double *forces, double *virial,
                                            double *atom_virials);

#ifdef __cplusplus
}
#endif

#endif /* EQUIVARIANT_H */
