/*
 * equivariant_kim_driver.c: a KIM API 2 model driver running equivariant through its C ABI
 * (crates/equivariant-capi/include/equivariant.h).
 *
 * A portable model built on this driver carries exactly one parameter file: a checkpoint of
 * `equivariant train` (safetensors).  The driver loads it in f64, registers the model's
 * species with species code = the model's type index, and asks for one full neighbour list
 * with cutoff r_max, including the neighbours of non-contributing (ghost) particles: the
 * model is a message-passing network, so a contributing particle's energy depends on the
 * particles within L * r_max (the influence distance), through the neighbours of its ghost
 * neighbours.  Nothing is tunable: the driver publishes no parameters, hence (as KIM
 * requires) no Refresh and no WriteParameterizedModel routine.
 *
 * KIM conventions used here (KIM API 2 documentation, "Theory" and "Implementation"):
 *   partialEnergy          sum of the contributing particles' energies
 *   partialForces          -dE/dx for every particle, contributing or not (written, not
 *                          accumulated: the simulator assembles ghosts' forces itself)
 *   partialParticleEnergy  E_i for contributing particles, 0 for the others
 *   partialVirial          V = sum_i dE/dx_i (x) x_i  (= -W with W the LAMMPS virial),
 *                          6 components in the order 11, 22, 33, 23, 31, 12
 *   partialParticleVirial  each particle's share of V (half of each of its edges' term),
 *                          ghosts' shares included (the simulator adds them to their owners),
 *                          6 components per particle as partialVirial
 *
 * Every error is written to the KIM log (with the ABI's message for a failed ABI call), and
 * the routine returns nonzero; nothing here aborts the host process.
 */

#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "KIM_ModelDriverHeaders.h"
#include "equivariant.h"

/* KIM hands int arrays (species codes, contributing flags, neighbour lists); the ABI takes
 * int32_t arrays.  They are passed through unchanged, which needs int to be 32 bits. */
typedef char equivariant_kim_int_is_int32[(sizeof(int) == sizeof(int32_t)) ? 1 : -1];

#define MESSAGE_LEN 2048

#define LOG_ERROR(LOG_ENTRY, OBJECT, MESSAGE) \
  LOG_ENTRY(OBJECT, KIM_LOG_VERBOSITY_error, MESSAGE, __LINE__, __FILE__)

/* The driver's routines, declared with KIM's function types so that the compiler checks
 * their signatures.  The create routine is named in CMakeLists.txt (the only exported
 * symbol). */
KIM_ModelDriverCreateFunction equivariant_kim_driver_create;
static KIM_ModelComputeArgumentsCreateFunction compute_arguments_create;
static KIM_ModelComputeFunction compute_routine;
static KIM_ModelComputeArgumentsDestroyFunction compute_arguments_destroy;
static KIM_ModelDestroyFunction destroy_routine;

/* One loaded model (the KIM model buffer). */
struct driver_model
{
  EquivariantModel * model;

  /* A value in Å times length_factor is in the simulator's length unit, a value in eV
   * times energy_factor in its energy unit. */
  double length_factor;
  double energy_factor;

  /* What KIM reads through the pointers given to it, in the simulator's units. */
  double influence_distance; /* L * r_max */
  double neighbor_cutoff; /* r_max */
  int will_not_request_ghost_neighbors; /* 0: the neighbours of ghosts are needed */
};

/* Scratch arrays of one compute-arguments object, grown when a call needs more and reused
 * from call to call (no allocation per step once the system's size settles). */
struct driver_arguments
{
  size_t atom_capacity;
  int32_t * num_neighbors; /* [atom_capacity] */
  size_t position_capacity;
  double * positions; /* [position_capacity], only when converting units */
  size_t neighbor_capacity;
  int32_t * neighbors; /* [neighbor_capacity], the lists one after another */
  size_t atom_virial_capacity;
  double * atom_virials; /* [atom_virial_capacity], 9 per particle, only when asked for */
};

/* For a failed ABI call (code != EQUIVARIANT_OK), writes
 * "equivariant: <what> failed (code <code>): <the ABI's message>" into `message` and returns
 * 1; returns 0 for EQUIVARIANT_OK.  Call it right after the ABI call, whose message it reads. */
static int abi_failed(int32_t const code, char const * const what, char * const message)
{
  if (code == EQUIVARIANT_OK) return 0;
  snprintf(message,
           MESSAGE_LEN,
           "equivariant: %s failed (code %d): %s",
           what,
           (int) code,
           equivariant_last_error());
  return 1;
}

/* The factor taking a value of the given dimension from the model's units (Å, eV) to the
 * chosen units; returns nonzero on error. */
static int unit_factor(KIM_LengthUnit const length_unit,
                       KIM_EnergyUnit const energy_unit,
                       double const length_exponent,
                       double const energy_exponent,
                       double * const factor)
{
  return KIM_ModelDriverCreate_ConvertUnit(KIM_LENGTH_UNIT_A,
                                           KIM_ENERGY_UNIT_eV,
                                           KIM_CHARGE_UNIT_e,
                                           KIM_TEMPERATURE_UNIT_K,
                                           KIM_TIME_UNIT_ps,
                                           length_unit,
                                           energy_unit,
                                           KIM_CHARGE_UNIT_e,
                                           KIM_TEMPERATURE_UNIT_K,
                                           KIM_TIME_UNIT_ps,
                                           length_exponent,
                                           energy_exponent,
                                           0.0,
                                           0.0,
                                           0.0,
                                           factor);
}

/* ---------------------------------------------------------------------------------------- */
/* Create                                                                                   */
/* ---------------------------------------------------------------------------------------- */

int equivariant_kim_driver_create(KIM_ModelDriverCreate * const modelDriverCreate,
                                  KIM_LengthUnit const requestedLengthUnit,
                                  KIM_EnergyUnit const requestedEnergyUnit,
                                  KIM_ChargeUnit const requestedChargeUnit,
                                  KIM_TemperatureUnit const requestedTemperatureUnit,
                                  KIM_TimeUnit const requestedTimeUnit)
{
  char message[MESSAGE_LEN];
  char path[4096];
  struct driver_model * model;
  KIM_LengthUnit length_unit = requestedLengthUnit;
  KIM_EnergyUnit energy_unit = requestedEnergyUnit;
  int number_of_parameter_files = 0;
  char const * directory = NULL;
  char const * basename = NULL;
  double cutoff;
  int32_t num_layers;
  int32_t num_species;
  int32_t index;
  (void) requestedChargeUnit;
  (void) requestedTemperatureUnit;
  (void) requestedTimeUnit;

  model = (struct driver_model *) calloc(1, sizeof(struct driver_model));
  if (model == NULL)
  {
    LOG_ERROR(KIM_ModelDriverCreate_LogEntry, modelDriverCreate, "equivariant: out of memory");
    return 1;
  }

  /* Units: the model works in Å and eV; any length and energy unit KIM knows is served by
   * converting at the boundary.  Charge, temperature and time are unused. */
  if (KIM_LengthUnit_Equal(length_unit, KIM_LENGTH_UNIT_unused)) length_unit = KIM_LENGTH_UNIT_A;
  if (KIM_EnergyUnit_Equal(energy_unit, KIM_ENERGY_UNIT_unused)) energy_unit = KIM_ENERGY_UNIT_eV;
  if (unit_factor(length_unit, energy_unit, 1.0, 0.0, &model->length_factor)
      || unit_factor(length_unit, energy_unit, 0.0, 1.0, &model->energy_factor)
      || KIM_ModelDriverCreate_SetUnits(modelDriverCreate,
                                        length_unit,
                                        energy_unit,
                                        KIM_CHARGE_UNIT_unused,
                                        KIM_TEMPERATURE_UNIT_unused,
                                        KIM_TIME_UNIT_unused)
      || KIM_ModelDriverCreate_SetModelNumbering(modelDriverCreate, KIM_NUMBERING_zeroBased))
  {
    snprintf(message, MESSAGE_LEN, "equivariant: unable to set the units or numbering");
    goto fail;
  }

  /* The parameter file: the checkpoint. */
  KIM_ModelDriverCreate_GetNumberOfParameterFiles(modelDriverCreate,
                                                  &number_of_parameter_files);
  if (number_of_parameter_files != 1)
  {
    snprintf(message,
             MESSAGE_LEN,
             "equivariant: expected exactly 1 parameter file (the checkpoint), got %d",
             number_of_parameter_files);
    goto fail;
  }
  KIM_ModelDriverCreate_GetParameterFileDirectoryName(modelDriverCreate, &directory);
  if (KIM_ModelDriverCreate_GetParameterFileBasename(modelDriverCreate, 0, &basename)
      || (size_t) snprintf(path, sizeof(path), "%s/%s", directory, basename) >= sizeof(path))
  {
    snprintf(message, MESSAGE_LEN, "equivariant: unable to get the parameter file's path");
    goto fail;
  }

  if (abi_failed(equivariant_model_load(path, 64, &model->model),
                 "equivariant_model_load (f64)",
                 message)
      || abi_failed(equivariant_model_cutoff(model->model, &cutoff),
                    "equivariant_model_cutoff",
                    message)
      || abi_failed(equivariant_model_num_layers(model->model, &num_layers),
                    "equivariant_model_num_layers",
                    message)
      || abi_failed(equivariant_model_num_species(model->model, &num_species),
                    "equivariant_model_num_species",
                    message))
    goto fail;

  /* Species: code = the model's type index. */
  for (index = 0; index < num_species; ++index)
  {
    char const * symbol = NULL;
    KIM_SpeciesName species;
    if (abi_failed(equivariant_model_species_symbol(model->model, index, &symbol),
                   "equivariant_model_species_symbol",
                   message))
      goto fail;
    species = KIM_SpeciesName_FromString(symbol);
    if (!KIM_SpeciesName_Known(species)
        || KIM_ModelDriverCreate_SetSpeciesCode(modelDriverCreate, species, (int) index))
    {
      snprintf(message,
               MESSAGE_LEN,
               "equivariant: unable to register species %d of the checkpoint, '%s' (a KIM "
               "species name?)",
               (int) index,
               symbol);
      goto fail;
    }
  }

  /* Cutoffs, in the simulator's length unit. */
  model->neighbor_cutoff = cutoff * model->length_factor;
  model->influence_distance = num_layers * model->neighbor_cutoff;
  model->will_not_request_ghost_neighbors = 0;
  KIM_ModelDriverCreate_SetInfluenceDistancePointer(modelDriverCreate,
                                                    &model->influence_distance);
  KIM_ModelDriverCreate_SetNeighborListPointers(modelDriverCreate,
                                                1,
                                                &model->neighbor_cutoff,
                                                &model->will_not_request_ghost_neighbors);

  if (KIM_ModelDriverCreate_SetRoutinePointer(
          modelDriverCreate,
          KIM_MODEL_ROUTINE_NAME_ComputeArgumentsCreate,
          KIM_LANGUAGE_NAME_c,
          1,
          (KIM_Function *) compute_arguments_create)
      || KIM_ModelDriverCreate_SetRoutinePointer(modelDriverCreate,
                                                 KIM_MODEL_ROUTINE_NAME_Compute,
                                                 KIM_LANGUAGE_NAME_c,
                                                 1,
                                                 (KIM_Function *) compute_routine)
      || KIM_ModelDriverCreate_SetRoutinePointer(
          modelDriverCreate,
          KIM_MODEL_ROUTINE_NAME_ComputeArgumentsDestroy,
          KIM_LANGUAGE_NAME_c,
          1,
          (KIM_Function *) compute_arguments_destroy)
      || KIM_ModelDriverCreate_SetRoutinePointer(modelDriverCreate,
                                                 KIM_MODEL_ROUTINE_NAME_Destroy,
                                                 KIM_LANGUAGE_NAME_c,
                                                 1,
                                                 (KIM_Function *) destroy_routine))
  {
    snprintf(message, MESSAGE_LEN, "equivariant: unable to register the routines");
    goto fail;
  }

  KIM_ModelDriverCreate_SetModelBufferPointer(modelDriverCreate, (void *) model);
  return 0;

fail:
  LOG_ERROR(KIM_ModelDriverCreate_LogEntry, modelDriverCreate, message);
  equivariant_model_free(model->model);
  free(model);
  return 1;
}

/* ---------------------------------------------------------------------------------------- */
/* Compute arguments                                                                        */
/* ---------------------------------------------------------------------------------------- */

static int compute_arguments_create(
    KIM_ModelCompute const * const modelCompute,
    KIM_ModelComputeArgumentsCreate * const modelComputeArgumentsCreate)
{
  struct driver_arguments * arguments;
  (void) modelCompute;

  arguments = (struct driver_arguments *) calloc(1, sizeof(struct driver_arguments));
  if (arguments == NULL
      || KIM_ModelComputeArgumentsCreate_SetArgumentSupportStatus(
          modelComputeArgumentsCreate,
          KIM_COMPUTE_ARGUMENT_NAME_partialEnergy,
          KIM_SUPPORT_STATUS_optional)
      || KIM_ModelComputeArgumentsCreate_SetArgumentSupportStatus(
          modelComputeArgumentsCreate,
          KIM_COMPUTE_ARGUMENT_NAME_partialForces,
          KIM_SUPPORT_STATUS_optional)
      || KIM_ModelComputeArgumentsCreate_SetArgumentSupportStatus(
          modelComputeArgumentsCreate,
          KIM_COMPUTE_ARGUMENT_NAME_partialParticleEnergy,
          KIM_SUPPORT_STATUS_optional)
      || KIM_ModelComputeArgumentsCreate_SetArgumentSupportStatus(
          modelComputeArgumentsCreate,
          KIM_COMPUTE_ARGUMENT_NAME_partialVirial,
          KIM_SUPPORT_STATUS_optional)
      || KIM_ModelComputeArgumentsCreate_SetArgumentSupportStatus(
          modelComputeArgumentsCreate,
          KIM_COMPUTE_ARGUMENT_NAME_partialParticleVirial,
          KIM_SUPPORT_STATUS_optional))
  {
    free(arguments);
    LOG_ERROR(KIM_ModelComputeArgumentsCreate_LogEntry,
              modelComputeArgumentsCreate,
              "equivariant: unable to create the compute arguments (out of memory?)");
    return 1;
  }
  KIM_ModelComputeArgumentsCreate_SetModelBufferPointer(modelComputeArgumentsCreate,
                                                        (void *) arguments);
  return 0;
}

static int compute_arguments_destroy(
    KIM_ModelCompute const * const modelCompute,
    KIM_ModelComputeArgumentsDestroy * const modelComputeArgumentsDestroy)
{
  void * buffer = NULL;
  struct driver_arguments * arguments;
  (void) modelCompute;

  KIM_ModelComputeArgumentsDestroy_GetModelBufferPointer(modelComputeArgumentsDestroy,
                                                         &buffer);
  arguments = (struct driver_arguments *) buffer;
  if (arguments != NULL)
  {
    free(arguments->num_neighbors);
    free(arguments->positions);
    free(arguments->neighbors);
    free(arguments->atom_virials);
    free(arguments);
  }
  return 0;
}

/* ---------------------------------------------------------------------------------------- */
/* Compute                                                                                  */
/* ---------------------------------------------------------------------------------------- */

/* `block` (of *capacity elements of `size` bytes) reallocated for `needed` > *capacity
 * elements, with room to spare so that a slowly growing system does not reallocate every
 * step; *capacity is updated.  NULL when out of memory (the old block is then unchanged). */
static void * grow(void * const block, size_t * const capacity, size_t const needed,
                   size_t const size)
{
  size_t const larger = needed + needed / 4 + 1024;
  void * grown = NULL;
  if (larger > needed && larger <= SIZE_MAX / size) grown = realloc(block, larger * size);
  if (grown != NULL) *capacity = larger;
  return grown;
}

/* KIM's virial V = -W from the ABI's row-major W (times `factor`, the energy unit's), in
 * KIM's order 11, 22, 33, 23, 31, 12.  W is symmetric for a rotation-invariant energy; the
 * off-diagonal pairs are averaged. */
static void kim_virial(double const * const w, double const factor, double * const v)
{
  v[0] = -factor * w[0];
  v[1] = -factor * w[4];
  v[2] = -factor * w[8];
  v[3] = -0.5 * factor * (w[5] + w[7]);
  v[4] = -0.5 * factor * (w[2] + w[6]);
  v[5] = -0.5 * factor * (w[1] + w[3]);
}

static int compute_routine(KIM_ModelCompute const * const modelCompute,
                           KIM_ModelComputeArguments const * const modelComputeArguments)
{
  char message[MESSAGE_LEN];
  void * buffer = NULL;
  struct driver_model * model;
  struct driver_arguments * arguments;
  int * number_of_particles = NULL;
  int * species = NULL;
  int * contributing = NULL;
  double * coordinates = NULL;
  double * energy = NULL;
  double * forces = NULL;
  double * particle_energy = NULL;
  double * virial = NULL;
  double * particle_virial = NULL;
  double abi_virial[9];
  double const * positions;
  int convert;
  size_t n;
  size_t total = 0;
  size_t i;

  KIM_ModelCompute_GetModelBufferPointer(modelCompute, &buffer);
  model = (struct driver_model *) buffer;
  KIM_ModelComputeArguments_GetModelBufferPointer(modelComputeArguments, &buffer);
  arguments = (struct driver_arguments *) buffer;
  convert = (model->length_factor != 1.0 || model->energy_factor != 1.0);

  /* KIM has checked that the required arguments are set; the others are NULL when not
   * wanted, and the ABI skips a NULL output. */
  if (KIM_ModelComputeArguments_GetArgumentPointerInteger(
          modelComputeArguments,
          KIM_COMPUTE_ARGUMENT_NAME_numberOfParticles,
          &number_of_particles)
      || KIM_ModelComputeArguments_GetArgumentPointerInteger(
          modelComputeArguments,
          KIM_COMPUTE_ARGUMENT_NAME_particleSpeciesCodes,
          &species)
      || KIM_ModelComputeArguments_GetArgumentPointerInteger(
          modelComputeArguments,
          KIM_COMPUTE_ARGUMENT_NAME_particleContributing,
          &contributing)
      || KIM_ModelComputeArguments_GetArgumentPointerDouble(
          modelComputeArguments, KIM_COMPUTE_ARGUMENT_NAME_coordinates, &coordinates)
      || KIM_ModelComputeArguments_GetArgumentPointerDouble(
          modelComputeArguments, KIM_COMPUTE_ARGUMENT_NAME_partialEnergy, &energy)
      || KIM_ModelComputeArguments_GetArgumentPointerDouble(
          modelComputeArguments, KIM_COMPUTE_ARGUMENT_NAME_partialForces, &forces)
      || KIM_ModelComputeArguments_GetArgumentPointerDouble(
          modelComputeArguments,
          KIM_COMPUTE_ARGUMENT_NAME_partialParticleEnergy,
          &particle_energy)
      || KIM_ModelComputeArguments_GetArgumentPointerDouble(
          modelComputeArguments, KIM_COMPUTE_ARGUMENT_NAME_partialVirial, &virial)
      || KIM_ModelComputeArguments_GetArgumentPointerDouble(
          modelComputeArguments,
          KIM_COMPUTE_ARGUMENT_NAME_partialParticleVirial,
          &particle_virial))
  {
    snprintf(message, MESSAGE_LEN, "equivariant: unable to get the compute arguments");
    goto fail;
  }
  /* A negative count is the ABI's to reject; the scratch arrays are sized for none. */
  n = *number_of_particles > 0 ? (size_t) *number_of_particles : 0;

  if (n > arguments->atom_capacity)
  {
    int32_t * grown = (int32_t *) grow(
        arguments->num_neighbors, &arguments->atom_capacity, n, sizeof(int32_t));
    if (grown == NULL) goto out_of_memory;
    arguments->num_neighbors = grown;
  }

  /* The neighbour list of every particle, ghosts included.  Each list is copied as soon as
   * it is returned, because the array GetNeighborList hands out is only valid until its next
   * call: KIM renumbers a list into one buffer per neighbour list when the simulator's
   * numbering differs from the model's, and LAMMPS strips the special-bond bits of a
   * molecular system's list into one buffer too; both are overwritten by the next call. */
  for (i = 0; i < n; ++i)
  {
    int count = 0;
    int const * list = NULL;
    if (KIM_ModelComputeArguments_GetNeighborList(
            modelComputeArguments, 0, (int) i, &count, &list)
        || count < 0 || (count > 0 && list == NULL))
    {
      snprintf(message,
               MESSAGE_LEN,
               "equivariant: no valid neighbour list for particle %lu",
               (unsigned long) i);
      goto fail;
    }
    if (total + (size_t) count > arguments->neighbor_capacity)
    {
      int32_t * grown = (int32_t *) grow(arguments->neighbors,
                                         &arguments->neighbor_capacity,
                                         total + (size_t) count,
                                         sizeof(int32_t));
      if (grown == NULL) goto out_of_memory;
      arguments->neighbors = grown;
    }
    if (count > 0)
      memcpy(arguments->neighbors + total, list, (size_t) count * sizeof(int32_t));
    arguments->num_neighbors[i] = (int32_t) count;
    total += (size_t) count;
  }

  positions = coordinates;
  if (convert)
  {
    double const to_angstrom = 1.0 / model->length_factor;
    if (3 * n > arguments->position_capacity)
    {
      double * grown = (double *) grow(
          arguments->positions, &arguments->position_capacity, 3 * n, sizeof(double));
      if (grown == NULL) goto out_of_memory;
      arguments->positions = grown;
    }
    for (i = 0; i < 3 * n; ++i) arguments->positions[i] = coordinates[i] * to_angstrom;
    positions = arguments->positions;
  }

  if (particle_virial != NULL && 9 * n > arguments->atom_virial_capacity)
  {
    double * grown = (double *) grow(
        arguments->atom_virials, &arguments->atom_virial_capacity, 9 * n, sizeof(double));
    if (grown == NULL) goto out_of_memory;
    arguments->atom_virials = grown;
  }

  if (abi_failed(equivariant_model_compute(model->model,
                                           (int32_t) *number_of_particles,
                                           (int32_t const *) species,
                                           positions,
                                           (int32_t const *) contributing,
                                           arguments->num_neighbors,
                                           arguments->neighbors,
                                           energy,
                                           particle_energy,
                                           forces,
                                           virial != NULL ? abi_virial : NULL,
                                           particle_virial != NULL ? arguments->atom_virials
                                                                   : NULL),
                 "equivariant_model_compute",
                 message))
    goto fail;

  if (convert)
  {
    double const force_factor = model->energy_factor / model->length_factor;
    if (energy != NULL) *energy *= model->energy_factor;
    if (particle_energy != NULL)
      for (i = 0; i < n; ++i) particle_energy[i] *= model->energy_factor;
    if (forces != NULL)
      for (i = 0; i < 3 * n; ++i) forces[i] *= force_factor;
  }

  if (virial != NULL) kim_virial(abi_virial, model->energy_factor, virial);
  if (particle_virial != NULL)
    for (i = 0; i < n; ++i)
      kim_virial(arguments->atom_virials + 9 * i, model->energy_factor, particle_virial + 6 * i);
  return 0;

out_of_memory:
  snprintf(message, MESSAGE_LEN, "equivariant: out of memory (%lu particles)", (unsigned long) n);
fail:
  LOG_ERROR(KIM_ModelComputeArguments_LogEntry, modelComputeArguments, message);
  return 1;
}

/* ---------------------------------------------------------------------------------------- */
/* Destroy                                                                                  */
/* ---------------------------------------------------------------------------------------- */

static int destroy_routine(KIM_ModelDestroy * const modelDestroy)
{
  void * buffer = NULL;
  struct driver_model * model;

  KIM_ModelDestroy_GetModelBufferPointer(modelDestroy, &buffer);
  model = (struct driver_model *) buffer;
  if (model != NULL) equivariant_model_free(model->model);
  free(model);
  return 0;
}
