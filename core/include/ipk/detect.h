/* ipk/detect.h - file format and ML framework detection from content.
 *
 * The format is decided from the bytes only (magic numbers, headers,
 * footers, container directories), never from the file name. Recognized:
 *   models:  safetensors, pytorch (zip with data.pkl: state_dict or whole
 *            module), torchscript (zip with code/ or constants.pkl), onnx
 *            (ModelProto: IR version, opsets, producer, graph signature),
 *            keras (zip with config.json + metadata.json), keras-h5 (HDF5
 *            whose attributes name keras_version / model_config), pickle
 *            (protocol and the module.name of every GLOBAL / STACK_GLOBAL;
 *            the stream is walked opcode by opcode and never unpickled),
 *            gguf (version, tensor count, metadata keys), tfjs-model
 *            (model.json with weightsManifest), tfjs-manifest (weights
 *            manifest array), tf-savedmodel-pb (SavedModel protobuf: tags,
 *            TF version; the directory layout is judged by the caller).
 *   arrays:  npy (dtype, shape, fortran order; data length checked), npz.
 *   tables:  parquet (footer: rows, columns, physical types, row groups,
 *            created_by), arrow (IPC file), arrow-stream, feather (v1),
 *            hdf5 (superblock version), tfrecord (records counted, every
 *            length and data CRC-32C checked), idx (plain or gzip), csv, tsv
 *            (delimiter sniffed; statistics are table.h's job), json, jsonl.
 *   images:  png, jpeg, gif, bmp, webp (width, height), tiff.
 *   other:   zip, gzip, text (UTF-8, line count), empty, binary.
 *
 * Result: ipk_detect_t with short names plus `info`, a JSON object (UTF-8,
 * NUL-terminated, malloc'd, owned by the result: ipk_detect_free) holding
 * what the headers tell, with IPFS Kit key names where it has one
 * (num_rows, num_columns, columns, dtypes, size_bytes).
 *
 * Errors: a file whose signature commits it to a format but whose structure
 * is broken fails with IPK_ETRUNC (ends early) or IPK_EFORMAT, and eb says
 * "NAME: offset N: format: why". IPK_ENOENT/IPK_EIO for unreadable paths.
 */
#ifndef IPK_DETECT_H
#define IPK_DETECT_H
#include <stddef.h>
#include <stdint.h>
#include "err.h"

typedef struct {
  char format[32];    /* e.g. "onnx", "csv", "png"; "binary" when unknown */
  char framework[32]; /* "pytorch", "onnx", "keras", "tensorflow", "tensorflow.js",
                         "sklearn", "gguf", "numpy", "safetensors", ... or "" */
  char kind[16];      /* "model", "array", "table", "image", "text", "archive", "other" */
  uint64_t size;      /* bytes examined (the whole file) */
  char *info;         /* JSON object text, owned; never NULL after success */
} ipk_detect_t;

/* Detect buf[0..len) (borrowed). name is used only in error messages.
 * On success *out is filled (release with ipk_detect_free). */
int ipk_detect_buf(const uint8_t *buf, size_t len, const char *name, ipk_detect_t *out,
                   ipk_errbuf_t *eb);

/* Detect the regular file at path (mapped read-only, never modified). */
int ipk_detect_file(const char *path, ipk_detect_t *out, ipk_errbuf_t *eb);

/* Frees out->info and zeroes *out; NULL and already-freed are fine. */
void ipk_detect_free(ipk_detect_t *d);

/* CRC-32C (Castagnoli), as TFRecord uses; exposed for tests and writers. */
uint32_t ipk_crc32c(const void *data, size_t n);

/* Job for the thread pool (ipk_loop_submit(loop, ipk_detect_job, job)):
 * runs ipk_detect_file(job->path, &job->out, &job->eb). The caller keeps
 * path alive until completion and frees job->out with ipk_detect_free. */
typedef struct {
  const char *path;
  ipk_detect_t out;
  ipk_errbuf_t eb;
} ipk_detect_job_t;
int ipk_detect_job(void *arg);

#endif
