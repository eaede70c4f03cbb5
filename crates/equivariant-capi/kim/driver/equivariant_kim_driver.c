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
 * neighbours.
 *
 * KIM conventions used here (KIM API 2 documentation, "Theory" and "Implementation"):
 *   partialEnergy          sum of the contributing particles' energies
 *   partialForces          -dE/dx for every particle, contributing or not (written, not
 *                          accumulated: the simulator assembles ghosts' forces itself)
 *   partialParticleEnergy  E_i for contributing particles, 0 for the others
 *   partialVirial          V = sum_i dE/dx_i (x) x_i  (= -W with W the LAMMPS virial),
 *                          6 components in the order 11, 22, 33, 23, 31, 12
 *
 * Every error from the ABI is written to the KIM log with the ABI's message, and the routine
 * returns nonzero; nothing here aborts the host process.
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

/* The driver's create routine (named in CMakeLists.txt; the only exported symbol). */
int equivariant_kim_driver_create(KIM_ModelDriverCreate * const modelDriverCreate,
                                  KIM_LengthUnit const requestedLengthUnit,
                                  KIM_EnergyUnit const requestedEnergyUnit,
                                  KIM_ChargeUnit const requestedChargeUnit,
                                  KIM_TemperatureUnit const requestedTemperatureUnit,
                                  KIM_TimeUnit const requestedTimeUnit);

static KIM_ModelComputeArgumentsCreateFunction compute_arguments_create;
static KIM_ModelComputeFunction compute_routine;
static KIM_ModelComputeArgumentsDestroyFunction compute_arguments_destroy;
static KIM_ModelRefreshFunction refresh_routine;
static KIM_ModelWriteParameterizedModelFunction write_parameterized_model;
static KIM_ModelDestroyFunction destroy_routine;

/* One loaded model (the KIM model buffer). */
struct driver_model
{
  EquivariantModel * model;
  int32_t num_species;
  int32_t num_layers; /* L */
  double cutoff; /* r_max in Å (the model's unit) */

  /* The simulator's units: a value in Å times length_factor is in the simulator's length
   * unit, a value in eV times energy_factor in its energy unit. */
  double length_factor;
  double energy_factor;
  int convert; /* a factor differs from 1 */

  /* What KIM reads through the pointers given to it, in the simulator's units. */
  double influence_distance; /* L * r_max */
  double neighbor_cutoff; /* r_max */
  int will_not_request_ghost_neighbors; /* 0: the neighbours of ghosts are needed */

  /* Published parameters (read-only: the refresh routine rejects a change). */
  double parameter_cutoff; /* Å */
  int parameter_num_layers;

  /* The checkpoint's bytes, for WriteParameterizedModel (KIM removes the parameter file
   * directory once the create routine returns). */
  unsigned char * checkpoint;
  size_t checkpoint_size;
};

/* Scratch arrays of one compute-arguments object, reused from call to call. */
struct driver_arguments
{
  size_t atom_capacity;
  int32_t * num_neighbors; /* [atom_capacity] */
  double * positions; /* [3 * atom_capacity], only when converting units */
  size_t neighbor_capacity;
  int32_t * neighbors; /* [neighbor_capacity], CSR */
};

/* ---------------------------------------------------------------------------------------- */
/* Logging                                                                                  */
/* ---------------------------------------------------------------------------------------- */

static char const * abi_code_name(int32_t code)
{
  switch (code)
  {
    case EQUIVARIANT_OK: return "EQUIVARIANT_OK";
    case EQUIVARIANT_ERROR_NULL_POINTER: return "EQUIVARIANT_ERROR_NULL_POINTER";
    case EQUIVARIANT_ERROR_INVALID_ARGUMENT: return "EQUIVARIANT_ERROR_INVALID_ARGUMENT";
    case EQUIVARIANT_ERROR_LOAD: return "EQUIVARIANT_ERROR_LOAD";
    case EQUIVARIANT_ERROR_INTERNAL: return "EQUIVARIANT_ERROR_INTERNAL";
    default: return "unknown error code";
  }
}

/* "<what> failed (<code>): <the ABI's message>", read right after the failed call. */
static void format_abi_error(char * buffer, char const * what, int32_t code)
{
  char const * message = equivariant_last_error();
  if (message == NULL || message[0] == '\0') message = "(no message)";
  snprintf(buffer,
           MESSAGE_LEN,
           "equivariant: %s failed (%s = %d): %s",
           what,
           abi_code_name(code),
           (int) code,
           message);
}

#define DEFINE_LOGGER(NAME, TYPE, LOG_ENTRY)                                        \
  static void NAME(TYPE const * const object, int line, char const * message)      \
  {                                                                                 \
    LOG_ENTRY(object, KIM_LOG_VERBOSITY_error, message, line, __FILE__);            \
  }

DEFINE_LOGGER(log_create, KIM_ModelDriverCreate, KIM_ModelDriverCreate_LogEntry)
DEFINE_LOGGER(log_compute, KIM_ModelComputeArguments, KIM_ModelComputeArguments_LogEntry)
DEFINE_LOGGER(log_arguments_create,
              KIM_ModelComputeArgumentsCreate,
              KIM_ModelComputeArgumentsCreate_LogEntry)
DEFINE_LOGGER(log_refresh, KIM_ModelRefresh, KIM_ModelRefresh_LogEntry)
DEFINE_LOGGER(log_write,
              KIM_ModelWriteParameterizedModel,
              KIM_ModelWriteParameterizedModel_LogEntry)

/* ---------------------------------------------------------------------------------------- */
/* Create                                                                                   */
/* ---------------------------------------------------------------------------------------- */

static void free_model(struct driver_model * model)
{
  if (model == NULL) return;
  equivariant_model_free(model->model);
  free(model->checkpoint);
  free(model);
}

/* Reads a whole file; returns 0 on success. */
static int read_file(char const * path, unsigned char ** bytes, size_t * size)
{
  FILE * file;
  long length;
  unsigned char * buffer;

  *bytes = NULL;
  *size = 0;
  file = fopen(path, "rb");
  if (file == NULL) return 1;
  if (fseek(file, 0, SEEK_END) != 0 || (length = ftell(file)) < 0
      || fseek(file, 0, SEEK_SET) != 0)
  {
    fclose(file);
    return 1;
  }
  buffer = (unsigned char *) malloc(length > 0 ? (size_t) length : 1);
  if (buffer == NULL)
  {
    fclose(file);
    return 1;
  }
  if (length > 0 && fread(buffer, 1, (size_t) length, file) != (size_t) length)
  {
    free(buffer);
    fclose(file);
    return 1;
  }
  fclose(file);
  *bytes = buffer;
  *size = (size_t) length;
  return 0;
}

/* The factor taking a value of the given dimension from the model's units (Å, eV) to the
 * chosen units; returns nonzero on error. */
static int unit_factor(KIM_LengthUnit const length_unit,
                       KIM_EnergyUnit const energy_unit,
                       double const length_exponent,
                       double const energy_exponent,
                       double * factor)
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

int equivariant_kim_driver_create(KIM_ModelDriverCreate * const modelDriverCreate,
                                  KIM_LengthUnit const requestedLengthUnit,
                                  KIM_EnergyUnit const requestedEnergyUnit,
                                  KIM_ChargeUnit const requestedChargeUnit,
                                  KIM_TemperatureUnit const requestedTemperatureUnit,
                                  KIM_TimeUnit const requestedTimeUnit)
{
  char message[MESSAGE_LEN];
  struct driver_model * model = NULL;
  KIM_LengthUnit length_unit = requestedLengthUnit;
  KIM_EnergyUnit energy_unit = requestedEnergyUnit;
  int number_of_parameter_files = 0;
  char const * directory = NULL;
  char const * basename = NULL;
  char * path = NULL;
  int32_t code;
  int32_t index;

  /* Verify the prototypes against KIM's function types. */
  KIM_ModelDriverCreateFunction * create = equivariant_kim_driver_create;
  (void) create;
  (void) requestedChargeUnit;
  (void) requestedTemperatureUnit;
  (void) requestedTimeUnit;

  model = (struct driver_model *) calloc(1, sizeof(struct driver_model));
  if (model == NULL)
  {
    log_create(modelDriverCreate, __LINE__, "equivariant: out of memory");
    return 1;
  }

  /* Units: the model works in Å and eV; any length and energy unit KIM knows is served by
   * converting at the boundary.  Charge, temperature and time are unused. */
  if (KIM_LengthUnit_Equal(length_unit, KIM_LENGTH_UNIT_unused)) length_unit = KIM_LENGTH_UNIT_A;
  if (KIM_EnergyUnit_Equal(energy_unit, KIM_ENERGY_UNIT_unused)) energy_unit = KIM_ENERGY_UNIT_eV;
  if (unit_factor(length_unit, energy_unit, 1.0, 0.0, &model->length_factor)
      || unit_factor(length_unit, energy_unit, 0.0, 1.0, &model->energy_factor))
  {
    log_create(modelDriverCreate, __LINE__, "equivariant: unable to convert units");
    goto fail;
  }
  model->convert = (model->length_factor != 1.0 || model->energy_factor != 1.0);
  if (KIM_ModelDriverCreate_SetUnits(modelDriverCreate,
                                     length_unit,
                                     energy_unit,
                                     KIM_CHARGE_UNIT_unused,
                                     KIM_TEMPERATURE_UNIT_unused,
                                     KIM_TIME_UNIT_unused)
      || KIM_ModelDriverCreate_SetModelNumbering(modelDriverCreate, KIM_NUMBERING_zeroBased))
  {
    log_create(modelDriverCreate, __LINE__, "equivariant: unable to set units or numbering");
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
    log_create(modelDriverCreate, __LINE__, message);
    goto fail;
  }
  KIM_ModelDriverCreate_GetParameterFileDirectoryName(modelDriverCreate, &directory);
  if (KIM_ModelDriverCreate_GetParameterFileBasename(modelDriverCreate, 0, &basename)
      || directory == NULL || basename == NULL)
  {
    log_create(modelDriverCreate, __LINE__, "equivariant: unable to get the parameter file");
    goto fail;
  }
  path = (char *) malloc(strlen(directory) + strlen(basename) + 2);
  if (path == NULL)
  {
    log_create(modelDriverCreate, __LINE__, "equivariant: out of memory");
    goto fail;
  }
  sprintf(path, "%s/%s", directory, basename);

  if (read_file(path, &model->checkpoint, &model->checkpoint_size))
  {
    snprintf(message, MESSAGE_LEN, "equivariant: unable to read the checkpoint '%s'", path);
    log_create(modelDriverCreate, __LINE__, message);
    goto fail;
  }

  code = equivariant_model_load(path, 64, &model->model);
  if (code != EQUIVARIANT_OK)
  {
    char what[MESSAGE_LEN / 2];
    snprintf(what, sizeof(what), "equivariant_model_load('%s', f64)", path);
    format_abi_error(message, what, code);
    log_create(modelDriverCreate, __LINE__, message);
    goto fail;
  }
  free(path);
  path = NULL;

  code = equivariant_model_cutoff(model->model, &model->cutoff);
  if (code != EQUIVARIANT_OK)
  {
    format_abi_error(message, "equivariant_model_cutoff", code);
    log_create(modelDriverCreate, __LINE__, message);
    goto fail;
  }
  code = equivariant_model_num_layers(model->model, &model->num_layers);
  if (code != EQUIVARIANT_OK)
  {
    format_abi_error(message, "equivariant_model_num_layers", code);
    log_create(modelDriverCreate, __LINE__, message);
    goto fail;
  }
  code = equivariant_model_num_species(model->model, &model->num_species);
  if (code != EQUIVARIANT_OK)
  {
    format_abi_error(message, "equivariant_model_num_species", code);
    log_create(modelDriverCreate, __LINE__, message);
    goto fail;
  }
  if (!(model->cutoff > 0.0) || model->num_layers < 1 || model->num_species < 1)
  {
    snprintf(message,
             MESSAGE_LEN,
             "equivariant: the checkpoint has cutoff %g, %d layers, %d species",
             model->cutoff,
             (int) model->num_layers,
             (int) model->num_species);
    log_create(modelDriverCreate, __LINE__, message);
    goto fail;
  }

  /* Species: code = the model's type index. */
  for (index = 0; index < model->num_species; ++index)
  {
    char const * symbol = NULL;
    KIM_SpeciesName species;
    code = equivariant_model_species_symbol(model->model, index, &symbol);
    if (code != EQUIVARIANT_OK)
    {
      format_abi_error(message, "equivariant_model_species_symbol", code);
      log_create(modelDriverCreate, __LINE__, message);
      goto fail;
    }
    species = KIM_SpeciesName_FromString(symbol);
    if (!KIM_SpeciesName_Known(species))
    {
      snprintf(message,
               MESSAGE_LEN,
               "equivariant: species %d of the checkpoint, '%s', is not a KIM species name",
               (int) index,
               symbol);
      log_create(modelDriverCreate, __LINE__, message);
      goto fail;
    }
    if (KIM_ModelDriverCreate_SetSpeciesCode(modelDriverCreate, species, (int) index))
    {
      snprintf(message, MESSAGE_LEN, "equivariant: unable to register species '%s'", symbol);
      log_create(modelDriverCreate, __LINE__, message);
      goto fail;
    }
  }

  /* Cutoffs, in the simulator's length unit. */
  model->neighbor_cutoff = model->cutoff * model->length_factor;
  model->influence_distance = model->num_layers * model->neighbor_cutoff;
  model->will_not_request_ghost_neighbors = 0;
  KIM_ModelDriverCreate_SetInfluenceDistancePointer(modelDriverCreate,
                                                    &model->influence_distance);
  KIM_ModelDriverCreate_SetNeighborListPointers(modelDriverCreate,
                                                1,
                                                &model->neighbor_cutoff,
                                                &model->will_not_request_ghost_neighbors);

  /* Read-only parameters, so that `kim param get` can show them.  KIM allows Refresh and
   * WriteParameterizedModel only for a model that publishes parameters. */
  model->parameter_cutoff = model->cutoff;
  model->parameter_num_layers = (int) model->num_layers;
  if (KIM_ModelDriverCreate_SetParameterPointerDouble(
          modelDriverCreate,
          1,
          &model->parameter_cutoff,
          "cutoff",
          "r_max of the radius graph, in Angstrom (read-only; the influence distance is "
          "num_layers * cutoff)")
      || KIM_ModelDriverCreate_SetParameterPointerInteger(
          modelDriverCreate,
          1,
          &model->parameter_num_layers,
          "num_layers",
          "number of message-passing layers (read-only)"))
  {
    log_create(modelDriverCreate, __LINE__, "equivariant: unable to publish parameters");
    goto fail;
  }

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
                                                 (KIM_Function *) destroy_routine)
      || KIM_ModelDriverCreate_SetRoutinePointer(modelDriverCreate,
                                                 KIM_MODEL_ROUTINE_NAME_Refresh,
                                                 KIM_LANGUAGE_NAME_c,
                                                 0,
                                                 (KIM_Function *) refresh_routine)
      || KIM_ModelDriverCreate_SetRoutinePointer(
          modelDriverCreate,
          KIM_MODEL_ROUTINE_NAME_WriteParameterizedModel,
          KIM_LANGUAGE_NAME_c,
          0,
          (KIM_Function *) write_parameterized_model))
  {
    log_create(modelDriverCreate, __LINE__, "equivariant: unable to register routines");
    goto fail;
  }

  KIM_ModelDriverCreate_SetModelBufferPointer(modelDriverCreate, (void *) model);
  return 0;

fail:
  free(path);
  free_model(model);
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

  if (KIM_ModelComputeArgumentsCreate_SetArgumentSupportStatus(
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
          KIM_SUPPORT_STATUS_optional))
  {
    log_arguments_create(
        modelComputeArgumentsCreate, __LINE__, "equivariant: unable to set argument support");
    return 1;
  }

  arguments = (struct driver_arguments *) calloc(1, sizeof(struct driver_arguments));
  if (arguments == NULL)
  {
    log_arguments_create(modelComputeArgumentsCreate, __LINE__, "equivariant: out of memory");
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
  struct driver_arguments * arguments = NULL;
  (void) modelCompute;

  KIM_ModelComputeArgumentsDestroy_GetModelBufferPointer(modelComputeArgumentsDestroy,
                                                         (void **) &arguments);
  if (arguments != NULL)
  {
    free(arguments->num_neighbors);
    free(arguments->positions);
    free(arguments->neighbors);
    free(arguments);
  }
  return 0;
}

/* Grows the per-atom scratch arrays to n atoms; returns 0 on success. */
static int reserve_atoms(struct driver_arguments * arguments, size_t n, int positions)
{
  if (n > arguments->atom_capacity)
  {
    size_t capacity = n + n / 4 + 16;
    int32_t * num_neighbors;
    if (capacity > ((size_t) -1) / (3 * sizeof(double))) return 1;
    num_neighbors = (int32_t *) realloc(arguments->num_neighbors, capacity * sizeof(int32_t));
    if (num_neighbors == NULL) return 1;
    arguments->num_neighbors = num_neighbors;
    free(arguments->positions);
    arguments->positions = NULL;
    arguments->atom_capacity = capacity;
  }
  if (positions && arguments->positions == NULL)
  {
    arguments->positions
        = (double *) malloc(3 * arguments->atom_capacity * sizeof(double));
    if (arguments->positions == NULL) return 1;
  }
  return 0;
}

/* Grows the CSR neighbour array to hold `needed` entries; returns 0 on success. */
static int reserve_neighbors(struct driver_arguments * arguments, size_t needed)
{
  if (needed > arguments->neighbor_capacity)
  {
    size_t capacity = needed + needed / 2 + 1024;
    int32_t * neighbors;
    if (capacity > ((size_t) -1) / sizeof(int32_t)) return 1;
    neighbors = (int32_t *) realloc(arguments->neighbors, capacity * sizeof(int32_t));
    if (neighbors == NULL) return 1;
    arguments->neighbors = neighbors;
    arguments->neighbor_capacity = capacity;
  }
  return 0;
}

static int compute_routine(KIM_ModelCompute const * const modelCompute,
                           KIM_ModelComputeArguments const * const modelComputeArguments)
{
  char message[MESSAGE_LEN];
  struct driver_model * model = NULL;
  struct driver_arguments * arguments = NULL;
  int * number_of_particles = NULL;
  int * species = NULL;
  int * contributing = NULL;
  double * coordinates = NULL;
  double * energy = NULL;
  double * forces = NULL;
  double * particle_energy = NULL;
  double * virial = NULL;
  double w[9];
  double const * positions;
  size_t n;
  size_t total;
  size_t i;
  int32_t code;

  KIM_ModelCompute_GetModelBufferPointer(modelCompute, (void **) &model);
  KIM_ModelComputeArguments_GetModelBufferPointer(modelComputeArguments,
                                                  (void **) &arguments);
  if (model == NULL || arguments == NULL)
  {
    log_compute(modelComputeArguments, __LINE__, "equivariant: missing model buffer");
    return 1;
  }

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
          modelComputeArguments, KIM_COMPUTE_ARGUMENT_NAME_partialVirial, &virial))
  {
    log_compute(modelComputeArguments, __LINE__, "equivariant: unable to get arguments");
    return 1;
  }
  if (number_of_particles == NULL || *number_of_particles < 0)
  {
    log_compute(
        modelComputeArguments, __LINE__, "equivariant: invalid numberOfParticles");
    return 1;
  }
  n = (size_t) *number_of_particles;

  if (n == 0)
  {
    if (energy != NULL) *energy = 0.0;
    if (virial != NULL)
      for (i = 0; i < 6; ++i) virial[i] = 0.0;
    return 0;
  }
  if (species == NULL || contributing == NULL || coordinates == NULL)
  {
    log_compute(modelComputeArguments,
                __LINE__,
                "equivariant: missing species codes, contributing flags or coordinates");
    return 1;
  }

  if (reserve_atoms(arguments, n, model->convert))
  {
    log_compute(modelComputeArguments, __LINE__, "equivariant: out of memory");
    return 1;
  }

  /* Every particle's neighbour list, ghosts included, as CSR. */
  total = 0;
  for (i = 0; i < n; ++i)
  {
    int count = 0;
    int const * list = NULL;
    if (KIM_ModelComputeArguments_GetNeighborList(
            modelComputeArguments, 0, (int) i, &count, &list))
    {
      snprintf(message,
               MESSAGE_LEN,
               "equivariant: GetNeighborList failed for particle %lu (contributing %d)",
               (unsigned long) i,
               contributing[i]);
      log_compute(modelComputeArguments, __LINE__, message);
      return 1;
    }
    if (count < 0 || (count > 0 && list == NULL))
    {
      snprintf(message,
               MESSAGE_LEN,
               "equivariant: invalid neighbour list for particle %lu",
               (unsigned long) i);
      log_compute(modelComputeArguments, __LINE__, message);
      return 1;
    }
    if (reserve_neighbors(arguments, total + (size_t) count))
    {
      log_compute(modelComputeArguments, __LINE__, "equivariant: out of memory");
      return 1;
    }
    if (count > 0)
      memcpy(arguments->neighbors + total, list, (size_t) count * sizeof(int32_t));
    arguments->num_neighbors[i] = (int32_t) count;
    total += (size_t) count;
  }
  if (reserve_neighbors(arguments, 1)) /* never pass NULL, even without edges */
  {
    log_compute(modelComputeArguments, __LINE__, "equivariant: out of memory");
    return 1;
  }

  positions = coordinates;
  if (model->convert)
  {
    double const to_angstrom = 1.0 / model->length_factor;
    for (i = 0; i < 3 * n; ++i) arguments->positions[i] = coordinates[i] * to_angstrom;
    positions = arguments->positions;
  }

  code = equivariant_model_compute(model->model,
                                   (int32_t) n,
                                   (int32_t const *) species,
                                   positions,
                                   (int32_t const *) contributing,
                                   arguments->num_neighbors,
                                   arguments->neighbors,
                                   energy,
                                   particle_energy,
                                   forces,
                                   virial != NULL ? w : NULL);
  if (code != EQUIVARIANT_OK)
  {
    format_abi_error(message, "equivariant_model_compute", code);
    log_compute(modelComputeArguments, __LINE__, message);
    return 1;
  }

  if (model->convert)
  {
    double const force_factor = model->energy_factor / model->length_factor;
    if (energy != NULL) *energy *= model->energy_factor;
    if (particle_energy != NULL)
      for (i = 0; i < n; ++i) particle_energy[i] *= model->energy_factor;
    if (forces != NULL)
      for (i = 0; i < 3 * n; ++i) forces[i] *= force_factor;
    if (virial != NULL)
      for (i = 0; i < 9; ++i) w[i] *= model->energy_factor;
  }

  if (virial != NULL)
  {
    /* KIM: V = sum_i dE/dx_i (x) x_i = -W, Voigt order 11, 22, 33, 23, 31, 12.  W is
     * symmetric for a rotation-invariant energy; the off-diagonal pairs are averaged. */
    virial[0] = -w[0];
    virial[1] = -w[4];
    virial[2] = -w[8];
    virial[3] = -0.5 * (w[5] + w[7]);
    virial[4] = -0.5 * (w[2] + w[6]);
    virial[5] = -0.5 * (w[1] + w[3]);
  }
  return 0;
}

/* ---------------------------------------------------------------------------------------- */
/* Refresh, write, destroy                                                                  */
/* ---------------------------------------------------------------------------------------- */

static int refresh_routine(KIM_ModelRefresh * const modelRefresh)
{
  struct driver_model * model = NULL;
  int changed;

  KIM_ModelRefresh_GetModelBufferPointer(modelRefresh, (void **) &model);
  if (model == NULL)
  {
    log_refresh(modelRefresh, __LINE__, "equivariant: missing model buffer");
    return 1;
  }
  changed = (model->parameter_cutoff != model->cutoff)
            || (model->parameter_num_layers != (int) model->num_layers);
  /* Restore: the parameters describe the checkpoint and cannot change it. */
  model->parameter_cutoff = model->cutoff;
  model->parameter_num_layers = (int) model->num_layers;
  KIM_ModelRefresh_SetInfluenceDistancePointer(modelRefresh, &model->influence_distance);
  KIM_ModelRefresh_SetNeighborListPointers(modelRefresh,
                                           1,
                                           &model->neighbor_cutoff,
                                           &model->will_not_request_ghost_neighbors);
  if (changed)
  {
    log_refresh(modelRefresh,
                __LINE__,
                "equivariant: the parameters 'cutoff' and 'num_layers' are read-only (they "
                "describe the checkpoint); the change was undone");
    return 1;
  }
  return 0;
}

static int write_parameterized_model(
    KIM_ModelWriteParameterizedModel const * const modelWriteParameterizedModel)
{
  char message[MESSAGE_LEN];
  struct driver_model * model = NULL;
  char const * directory = NULL;
  char const * name = NULL;
  char * file_name = NULL;
  char * path = NULL;
  FILE * file;
  int error = 1;

  KIM_ModelWriteParameterizedModel_GetModelBufferPointer(modelWriteParameterizedModel,
                                                         (void **) &model);
  KIM_ModelWriteParameterizedModel_GetPath(modelWriteParameterizedModel, &directory);
  KIM_ModelWriteParameterizedModel_GetModelName(modelWriteParameterizedModel, &name);
  if (model == NULL || directory == NULL || name == NULL)
  {
    log_write(modelWriteParameterizedModel, __LINE__, "equivariant: missing model or path");
    return 1;
  }

  file_name = (char *) malloc(strlen(name) + sizeof(".safetensors"));
  path = (char *) malloc(strlen(directory) + strlen(name) + sizeof(".safetensors") + 1);
  if (file_name == NULL || path == NULL)
  {
    log_write(modelWriteParameterizedModel, __LINE__, "equivariant: out of memory");
    goto done;
  }
  sprintf(file_name, "%s.safetensors", name);
  sprintf(path, "%s/%s", directory, file_name);

  file = fopen(path, "wb");
  if (file == NULL)
  {
    snprintf(message, MESSAGE_LEN, "equivariant: unable to open '%s' for writing", path);
    log_write(modelWriteParameterizedModel, __LINE__, message);
    goto done;
  }
  if (fwrite(model->checkpoint, 1, model->checkpoint_size, file) != model->checkpoint_size)
  {
    fclose(file);
    snprintf(message, MESSAGE_LEN, "equivariant: unable to write '%s'", path);
    log_write(modelWriteParameterizedModel, __LINE__, message);
    goto done;
  }
  if (fclose(file) != 0)
  {
    snprintf(message, MESSAGE_LEN, "equivariant: unable to write '%s'", path);
    log_write(modelWriteParameterizedModel, __LINE__, message);
    goto done;
  }
  KIM_ModelWriteParameterizedModel_SetParameterFileName(modelWriteParameterizedModel,
                                                        file_name);
  error = 0;

done:
  free(file_name);
  free(path);
  return error;
}

static int destroy_routine(KIM_ModelDestroy * const modelDestroy)
{
  struct driver_model * model = NULL;
  KIM_ModelDestroy_GetModelBufferPointer(modelDestroy, (void **) &model);
  free_model(model);
  return 0;
}
