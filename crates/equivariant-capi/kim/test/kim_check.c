/*
 * kim_check.c: a minimal KIM simulator that checks an installed equivariant portable model
 * through the KIM API alone (no LAMMPS):
 *
 *   - energy = sum of the contributing particles' partialParticleEnergy, ghosts' 0;
 *   - partialVirial = -sum_i f_i (x) x_i over all particles (KIM's definition; Voigt order
 *     11, 22, 33, 23, 31, 12), i.e. the sign and order conversion of the driver;
 *   - unit conversion: the same structure in (Å, kcal/mol) and (nm, eV);
 *   - the model publishes no parameters (nothing is tunable);
 *   - a compute error (an unknown species code) comes back as an error, not an abort;
 *   - optionally, the forces against a LAMMPS dump of the same structure (ids = extxyz
 *     order), with columns id type x y z fx fy fz ... as examples/lammps/in.equivariant
 *     writes.
 *
 * Periodic images within the influence distance of the cell are explicit ghost particles
 * (non-contributing), with brute-force neighbour lists for every particle.
 *
 *   gcc -O2 -std=c99 -D_DEFAULT_SOURCE -I/usr/include/kim-api kim_check.c -o kim_check \
 *       -lkim-api -lm
 *   ./kim_check MODEL_NAME structure.extxyz [lammps.dump]
 *
 * (with KIM_API_MODEL_DRIVERS_DIR etc. as printed by ../build.sh).  Exit status 0 when all
 * checks pass.
 */

#include <limits.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "KIM_SimulatorHeaders.h"

#define MAX_ATOMS 100000

struct system
{
  int n; /* all particles */
  int n_local; /* the first n_local are the cell's atoms */
  int * origin; /* [n] the local atom a particle is an image of */
  int * species; /* [n] KIM species codes */
  int * contributing; /* [n] */
  double * x; /* [3n] */
  int * num_neighbors; /* [n] */
  int ** neighbors; /* [n] */
  double cutoff;
};

static int failures = 0;

static void check(int ok, char const * what)
{
  printf("%s %s\n", ok ? "ok  " : "FAIL", what);
  if (!ok) ++failures;
}

static int get_neighbors(void * const data,
                         int const number_of_lists,
                         double const * const cutoffs,
                         int const list,
                         int const particle,
                         int * const count,
                         int const ** const neighbors)
{
  struct system const * s = (struct system const *) data;
  if (number_of_lists != 1 || list != 0 || cutoffs[0] > s->cutoff + 1e-12) return 1;
  if (particle < 0 || particle >= s->n) return 1;
  *count = s->num_neighbors[particle];
  *neighbors = s->neighbors[particle];
  return 0;
}

/* Reads the first frame of an extxyz file: symbols, positions and the Lattice. */
static int read_extxyz(char const * path, int * n, char (*symbols)[4], double * x, double cell[9])
{
  FILE * f = fopen(path, "r");
  char line[4096];
  char * lattice;
  int i, error = 1;
  if (f == NULL) return 1;
  if (fgets(line, sizeof line, f) == NULL || sscanf(line, "%d", n) != 1 || *n <= 0
      || *n > MAX_ATOMS || fgets(line, sizeof line, f) == NULL)
    goto done;
  lattice = strstr(line, "Lattice=\"");
  if (lattice == NULL
      || sscanf(lattice + 9, "%lf %lf %lf %lf %lf %lf %lf %lf %lf", &cell[0], &cell[1], &cell[2],
                &cell[3], &cell[4], &cell[5], &cell[6], &cell[7], &cell[8]) != 9)
    goto done;
  for (i = 0; i < *n; ++i)
    if (fgets(line, sizeof line, f) == NULL
        || sscanf(line, "%3s %lf %lf %lf", symbols[i], &x[3 * i], &x[3 * i + 1], &x[3 * i + 2])
               != 4)
      goto done;
  error = 0;
done:
  fclose(f);
  return error;
}

/* b = a^-1; returns nonzero for a singular (or nearly singular) cell. */
static int invert3(double const a[9], double b[9])
{
  double det = a[0] * (a[4] * a[8] - a[5] * a[7]) - a[1] * (a[3] * a[8] - a[5] * a[6])
               + a[2] * (a[3] * a[7] - a[4] * a[6]);
  double volume_scale = 1.0;
  int k;
  for (k = 0; k < 3; ++k)
    volume_scale *= sqrt(a[3 * k] * a[3 * k] + a[3 * k + 1] * a[3 * k + 1]
                         + a[3 * k + 2] * a[3 * k + 2]);
  if (!(fabs(det) > 1e-9 * volume_scale)) return 1; /* also NaN and a zero row */
  b[0] = (a[4] * a[8] - a[5] * a[7]) / det;
  b[1] = (a[2] * a[7] - a[1] * a[8]) / det;
  b[2] = (a[1] * a[5] - a[2] * a[4]) / det;
  b[3] = (a[5] * a[6] - a[3] * a[8]) / det;
  b[4] = (a[0] * a[8] - a[2] * a[6]) / det;
  b[5] = (a[2] * a[3] - a[0] * a[5]) / det;
  b[6] = (a[3] * a[7] - a[4] * a[6]) / det;
  b[7] = (a[1] * a[6] - a[0] * a[7]) / det;
  b[8] = (a[0] * a[4] - a[1] * a[3]) / det;
  return 0;
}

static void free_system(struct system * s)
{
  int i;
  if (s->neighbors != NULL)
    for (i = 0; i < s->n; ++i) free(s->neighbors[i]);
  free(s->neighbors);
  free(s->num_neighbors);
  free(s->origin);
  free(s->species);
  free(s->contributing);
  free(s->x);
  memset(s, 0, sizeof *s);
}

/* Local atoms plus every periodic image within `reach` of the cell (a parallelepiped test
 * in fractional coordinates, padded by reach / height per axis), with neighbour lists.
 * Returns nonzero (with a message) on error; `s` is then empty. */
static int build_system(struct system * s,
                        int n_local,
                        int const * codes,
                        double const * x0,
                        double const cell[9],
                        double reach,
                        double cutoff,
                        double scale)
{
  double inverse[9], pad[3];
  int k, a, b, c, i, j, range[3];
  size_t capacity = (size_t) n_local;
  memset(s, 0, sizeof *s);
  if (invert3(cell, inverse))
  {
    printf("the cell is singular\n");
    return 1;
  }
  for (k = 0; k < 3; ++k)
  {
    /* height along axis k = 1 / |row k of inverse^T| = 1 / |column k of inverse| */
    double norm = sqrt(inverse[k] * inverse[k] + inverse[3 + k] * inverse[3 + k]
                       + inverse[6 + k] * inverse[6 + k]);
    pad[k] = reach * norm;
    if (!(pad[k] >= 0.0 && pad[k] < 1000.0))
    {
      printf("the influence distance %g is too large for the cell\n", reach);
      return 1;
    }
    range[k] = (int) ceil(pad[k]) + 1;
    if (capacity > (size_t) (INT_MAX / 3) / (size_t) (2 * range[k] + 1)) /* 3 n fits an int */
    {
      printf("too many periodic images\n");
      return 1;
    }
    capacity *= (size_t) (2 * range[k] + 1);
  }
  s->origin = malloc(sizeof(int) * capacity);
  s->species = malloc(sizeof(int) * capacity);
  s->contributing = malloc(sizeof(int) * capacity);
  s->x = malloc(sizeof(double) * 3 * capacity);
  if (s->origin == NULL || s->species == NULL || s->contributing == NULL || s->x == NULL)
    goto out_of_memory;
  s->n_local = n_local;
  for (i = 0; i < n_local; ++i)
  {
    s->origin[s->n] = i;
    s->species[s->n] = codes[i];
    s->contributing[s->n] = 1;
    for (k = 0; k < 3; ++k) s->x[3 * s->n + k] = x0[3 * i + k];
    ++s->n;
  }
  for (a = -range[0]; a <= range[0]; ++a)
    for (b = -range[1]; b <= range[1]; ++b)
      for (c = -range[2]; c <= range[2]; ++c)
      {
        if (a == 0 && b == 0 && c == 0) continue;
        for (i = 0; i < n_local; ++i)
        {
          double y[3], frac[3];
          int inside = 1;
          for (k = 0; k < 3; ++k)
            y[k] = x0[3 * i + k] + a * cell[k] + b * cell[3 + k] + c * cell[6 + k];
          for (k = 0; k < 3; ++k)
          {
            frac[k] = y[0] * inverse[k] + y[1] * inverse[3 + k] + y[2] * inverse[6 + k];
            if (frac[k] < -pad[k] || frac[k] > 1.0 + pad[k]) inside = 0;
          }
          if (!inside) continue;
          s->origin[s->n] = i;
          s->species[s->n] = codes[i];
          s->contributing[s->n] = 0;
          for (k = 0; k < 3; ++k) s->x[3 * s->n + k] = y[k];
          ++s->n;
        }
      }
  for (i = 0; i < 3 * s->n; ++i) s->x[i] *= scale;
  s->cutoff = cutoff;
  s->num_neighbors = calloc((size_t) s->n, sizeof(int));
  s->neighbors = calloc((size_t) s->n, sizeof(int *));
  if (s->num_neighbors == NULL || s->neighbors == NULL) goto out_of_memory;
  for (i = 0; i < s->n; ++i)
  {
    int count = 0, cap = 64;
    s->neighbors[i] = malloc(sizeof(int) * cap);
    if (s->neighbors[i] == NULL) goto out_of_memory;
    for (j = 0; j < s->n; ++j)
    {
      double d2 = 0.0;
      if (j == i) continue;
      for (k = 0; k < 3; ++k)
        d2 += (s->x[3 * j + k] - s->x[3 * i + k]) * (s->x[3 * j + k] - s->x[3 * i + k]);
      if (d2 < cutoff * cutoff)
      {
        if (count == cap)
        {
          int * grown = realloc(s->neighbors[i], sizeof(int) * 2 * (size_t) cap);
          if (grown == NULL) goto out_of_memory;
          s->neighbors[i] = grown;
          cap *= 2;
        }
        s->neighbors[i][count++] = j;
      }
    }
    s->num_neighbors[i] = count;
  }
  return 0;

out_of_memory:
  printf("out of memory (%d particles)\n", s->n);
  free_system(s);
  return 1;
}

struct result
{
  double energy;
  double virial[6];
  double * forces; /* [3 n_local], assembled onto the cell's atoms */
  double check_sum_pe; /* |E - sum particle energies| */
  double check_ghost_pe; /* max |ghost particle energy| */
  double check_virial; /* max |V - (-sum f (x) x)| */
  double virial_scale;
  int parameters; /* the number of parameters the model publishes */
  int error;
};

/* Creates the model in the given units and computes the cell. */
static void run(char const * model_name,
                KIM_LengthUnit length,
                KIM_EnergyUnit energy,
                double scale, /* simulator length per Å */
                int n_local,
                char (*symbols)[4],
                double const * x0,
                double const cell[9],
                int corrupt_species,
                struct result * r)
{
  KIM_Model * model = NULL;
  KIM_ComputeArguments * args = NULL;
  struct system s;
  int accepted = 0, lists = 0, i, k, supported, code;
  double influence = 0.0, *pe = NULL, *f = NULL, v[6], sum;
  double const * cutoffs;
  int const * hints;
  int * codes = malloc(sizeof(int) * (size_t) n_local);

  memset(r, 0, sizeof *r);
  memset(&s, 0, sizeof s);
  r->error = 1;
  if (codes == NULL)
  {
    printf("out of memory\n");
    return;
  }
  if (KIM_Model_Create(KIM_NUMBERING_zeroBased, length, energy, KIM_CHARGE_UNIT_e,
                       KIM_TEMPERATURE_UNIT_K, KIM_TIME_UNIT_ps, model_name, &accepted, &model)
      || !accepted)
  {
    printf("KIM_Model_Create failed or units not accepted (see kim.log)\n");
    if (model != NULL) KIM_Model_Destroy(&model);
    free(codes);
    return;
  }
  KIM_Model_GetNumberOfParameters(model, &r->parameters);
  KIM_Model_GetInfluenceDistance(model, &influence);
  KIM_Model_GetNeighborListPointers(model, &lists, &cutoffs, &hints);
  for (i = 0; i < n_local; ++i)
  {
    KIM_Model_GetSpeciesSupportAndCode(model, KIM_SpeciesName_FromString(symbols[i]), &supported,
                                       &code);
    if (!supported)
    {
      printf("species %s not supported\n", symbols[i]);
      goto done;
    }
    codes[i] = code;
  }
  /* ghosts out to the influence distance (in Å: the structure is scaled afterwards) */
  if (lists != 1)
  {
    printf("the model asks for %d neighbour lists, not 1\n", lists);
    goto done;
  }
  if (build_system(&s, n_local, codes, x0, cell, influence / scale, cutoffs[0], scale)) goto done;
  if (corrupt_species) s.species[0] = 77;

  pe = malloc(sizeof(double) * (size_t) s.n);
  f = malloc(sizeof(double) * 3 * (size_t) s.n);
  r->forces = calloc(3 * (size_t) n_local, sizeof(double));
  if (pe == NULL || f == NULL || r->forces == NULL)
  {
    printf("out of memory\n");
    goto done;
  }
  if (KIM_Model_ComputeArgumentsCreate(model, &args)
      || KIM_ComputeArguments_SetArgumentPointerInteger(
          args, KIM_COMPUTE_ARGUMENT_NAME_numberOfParticles, &s.n)
      || KIM_ComputeArguments_SetArgumentPointerInteger(
          args, KIM_COMPUTE_ARGUMENT_NAME_particleSpeciesCodes, s.species)
      || KIM_ComputeArguments_SetArgumentPointerInteger(
          args, KIM_COMPUTE_ARGUMENT_NAME_particleContributing, s.contributing)
      || KIM_ComputeArguments_SetArgumentPointerDouble(
          args, KIM_COMPUTE_ARGUMENT_NAME_coordinates, s.x)
      || KIM_ComputeArguments_SetArgumentPointerDouble(
          args, KIM_COMPUTE_ARGUMENT_NAME_partialEnergy, &r->energy)
      || KIM_ComputeArguments_SetArgumentPointerDouble(
          args, KIM_COMPUTE_ARGUMENT_NAME_partialForces, f)
      || KIM_ComputeArguments_SetArgumentPointerDouble(
          args, KIM_COMPUTE_ARGUMENT_NAME_partialParticleEnergy, pe)
      || KIM_ComputeArguments_SetArgumentPointerDouble(
          args, KIM_COMPUTE_ARGUMENT_NAME_partialVirial, r->virial)
      || KIM_ComputeArguments_SetCallbackPointer(args, KIM_COMPUTE_CALLBACK_NAME_GetNeighborList,
                                                 KIM_LANGUAGE_NAME_c,
                                                 (KIM_Function *) get_neighbors, &s))
  {
    printf("unable to set up compute arguments\n");
  }
  else if (KIM_Model_Compute(model, args))
  {
    printf("KIM_Model_Compute returned an error (%d particles)\n", s.n);
  }
  else
  {
    r->error = 0;
    sum = 0.0;
    for (i = 0; i < s.n; ++i)
    {
      if (s.contributing[i])
        sum += pe[i];
      else if (fabs(pe[i]) > r->check_ghost_pe)
        r->check_ghost_pe = fabs(pe[i]);
      for (k = 0; k < 3; ++k) r->forces[3 * s.origin[i] + k] += f[3 * i + k];
    }
    r->check_sum_pe = fabs(sum - r->energy);
    /* KIM: V = -sum_i f_i (x) x_i, Voigt 11 22 33 23 31 12 */
    for (k = 0; k < 6; ++k) v[k] = 0.0;
    for (i = 0; i < s.n; ++i)
    {
      double const * xi = s.x + 3 * i;
      double const * fi = f + 3 * i;
      v[0] -= fi[0] * xi[0];
      v[1] -= fi[1] * xi[1];
      v[2] -= fi[2] * xi[2];
      v[3] -= 0.5 * (fi[1] * xi[2] + fi[2] * xi[1]);
      v[4] -= 0.5 * (fi[0] * xi[2] + fi[2] * xi[0]);
      v[5] -= 0.5 * (fi[0] * xi[1] + fi[1] * xi[0]);
    }
    for (k = 0; k < 6; ++k)
    {
      if (fabs(v[k] - r->virial[k]) > r->check_virial) r->check_virial = fabs(v[k] - r->virial[k]);
      if (fabs(v[k]) > r->virial_scale) r->virial_scale = fabs(v[k]);
    }
    printf("  %d particles (%d contributing), influence distance %g, cutoff %g\n", s.n, n_local,
           influence, cutoffs[0]);
  }
  if (args != NULL) KIM_Model_ComputeArgumentsDestroy(model, &args);
done:
  KIM_Model_Destroy(&model);
  free_system(&s);
  free(pe);
  free(f);
  free(codes);
  if (r->error)
  {
    free(r->forces);
    r->forces = NULL;
  }
}

static double max_abs_diff(double const * a, double const * b, int n, double factor)
{
  double m = 0.0;
  int i;
  for (i = 0; i < n; ++i)
    if (fabs(a[i] - factor * b[i]) > m) m = fabs(a[i] - factor * b[i]);
  return m;
}

static double max_abs(double const * a, int n)
{
  double m = 0.0;
  int i;
  for (i = 0; i < n; ++i)
    if (fabs(a[i]) > m) m = fabs(a[i]);
  return m;
}

int main(int argc, char ** argv)
{
  static char symbols[MAX_ATOMS][4];
  static double x0[3 * MAX_ATOMS];
  double cell[9];
  int n, i;
  struct result metal, real, nm, bad;
  char message[256];
  /* eV in kcal/mol from CODATA 2018 (23.0605478); KIM 2.3 uses older constants
   * (23.0605302), hence the loose tolerance. */
  double kcal_per_ev = 23.060547830619029;

  if (argc < 3)
  {
    fprintf(stderr, "usage: %s MODEL_NAME structure.extxyz [lammps.dump]\n", argv[0]);
    return 2;
  }
  if (read_extxyz(argv[2], &n, symbols, x0, cell))
  {
    fprintf(stderr, "cannot read %s\n", argv[2]);
    return 2;
  }

  printf("metal units (A, eV):\n");
  run(argv[1], KIM_LENGTH_UNIT_A, KIM_ENERGY_UNIT_eV, 1.0, n, symbols, x0, cell, 0, &metal);
  check(!metal.error, "compute succeeds");
  if (metal.error) return 1;
  check(metal.parameters == 0, "the model publishes no parameters");
  printf("  energy_eV %.17g\n", metal.energy);
  printf("  KIM partialVirial (11 22 33 23 31 12) %.17g %.17g %.17g %.17g %.17g %.17g\n",
         metal.virial[0], metal.virial[1], metal.virial[2], metal.virial[3], metal.virial[4],
         metal.virial[5]);
  printf("  = LAMMPS W: xx %.17g yy %.17g zz %.17g xy %.17g xz %.17g yz %.17g\n", -metal.virial[0],
         -metal.virial[1], -metal.virial[2], -metal.virial[5], -metal.virial[4], -metal.virial[3]);
  snprintf(message, sizeof message, "energy = sum of partial particle energies (diff %.3g)",
           metal.check_sum_pe);
  check(metal.check_sum_pe <= 1e-10 * (1.0 + fabs(metal.energy)), message);
  snprintf(message, sizeof message, "ghosts' partial particle energies are 0 (max %.3g)",
           metal.check_ghost_pe);
  check(metal.check_ghost_pe == 0.0, message);
  snprintf(message, sizeof message,
           "partialVirial = -sum f (x) x, Voigt 11 22 33 23 31 12 (max diff %.3g of %.3g)",
           metal.check_virial, metal.virial_scale);
  check(metal.check_virial <= 1e-9 * (1.0 + metal.virial_scale), message);
  {
    double total[3] = {0.0, 0.0, 0.0};
    for (i = 0; i < n; ++i)
    {
      total[0] += metal.forces[3 * i];
      total[1] += metal.forces[3 * i + 1];
      total[2] += metal.forces[3 * i + 2];
    }
    snprintf(message, sizeof message, "sum of assembled forces ~ 0 (max component %.3g)",
             max_abs(total, 3));
    check(max_abs(total, 3) <= 1e-9 * (1.0 + max_abs(metal.forces, 3 * n)), message);
  }

  if (argc > 3)
  {
    FILE * dump = fopen(argv[3], "r");
    char line[1024];
    double worst = 0.0;
    int rows = 0;
    while (dump != NULL && fgets(line, sizeof line, dump) != NULL)
    {
      if (strncmp(line, "ITEM: ATOMS", 11) != 0) continue;
      while (fgets(line, sizeof line, dump) != NULL && strncmp(line, "ITEM:", 5) != 0)
      {
        int id, type;
        double p[3], g[3];
        if (sscanf(line, "%d %d %lf %lf %lf %lf %lf %lf", &id, &type, &p[0], &p[1], &p[2], &g[0],
                   &g[1], &g[2]) != 8 || id < 1 || id > n)
          continue;
        for (i = 0; i < 3; ++i)
          if (fabs(g[i] - metal.forces[3 * (id - 1) + i]) > worst)
            worst = fabs(g[i] - metal.forces[3 * (id - 1) + i]);
        ++rows;
      }
      break;
    }
    if (dump != NULL) fclose(dump);
    snprintf(message, sizeof message, "forces = LAMMPS dump's (%d atoms, max diff %.3g)", rows,
             worst);
    check(rows == n && worst <= 1e-9 * (1.0 + max_abs(metal.forces, 3 * n)), message);
  }

  printf("real-style units (A, kcal/mol):\n");
  run(argv[1], KIM_LENGTH_UNIT_A, KIM_ENERGY_UNIT_kcal_mol, 1.0, n, symbols, x0, cell, 0, &real);
  check(!real.error, "compute succeeds");
  if (!real.error)
  {
    double ratio = real.energy / metal.energy;
    snprintf(message, sizeof message, "energy ratio %.15g (kcal/mol per eV)", ratio);
    check(fabs(ratio / kcal_per_ev - 1.0) < 1e-5, message);
    snprintf(message, sizeof message, "forces scale by the same factor (max diff %.3g)",
             max_abs_diff(real.forces, metal.forces, 3 * n, ratio));
    check(max_abs_diff(real.forces, metal.forces, 3 * n, ratio)
              <= 1e-9 * max_abs(real.forces, 3 * n),
          message);
    snprintf(message, sizeof message, "virial scales by the same factor (max diff %.3g)",
             max_abs_diff(real.virial, metal.virial, 6, ratio));
    check(max_abs_diff(real.virial, metal.virial, 6, ratio) <= 1e-9 * max_abs(real.virial, 6),
          message);
  }

  printf("(nm, eV):\n");
  run(argv[1], KIM_LENGTH_UNIT_nm, KIM_ENERGY_UNIT_eV, 0.1, n, symbols, x0, cell, 0, &nm);
  check(!nm.error, "compute succeeds");
  if (!nm.error)
  {
    snprintf(message, sizeof message, "same energy (diff %.3g)", fabs(nm.energy - metal.energy));
    check(fabs(nm.energy - metal.energy) <= 1e-10 * (1.0 + fabs(metal.energy)), message);
    snprintf(message, sizeof message, "forces x10 in eV/nm (max diff %.3g)",
             max_abs_diff(nm.forces, metal.forces, 3 * n, 10.0));
    check(max_abs_diff(nm.forces, metal.forces, 3 * n, 10.0)
              <= 1e-9 * max_abs(nm.forces, 3 * n),
          message);
    snprintf(message, sizeof message, "same virial (max diff %.3g)",
             max_abs_diff(nm.virial, metal.virial, 6, 1.0));
    check(max_abs_diff(nm.virial, metal.virial, 6, 1.0) <= 1e-9 * max_abs(nm.virial, 6), message);
  }

  printf("an unknown species code:\n");
  run(argv[1], KIM_LENGTH_UNIT_A, KIM_ENERGY_UNIT_eV, 1.0, n, symbols, x0, cell, 1, &bad);
  check(bad.error, "compute returns an error (message in kim.log)");

  free(metal.forces);
  free(real.forces);
  free(nm.forces);
  free(bad.forces);
  printf(failures ? "%d check(s) FAILED\n" : "all checks passed\n", failures);
  return failures ? 1 : 0;
}
