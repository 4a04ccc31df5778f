-- FFI declarations for the ML kernels: ipk/rng.h, partition.h, idx.h,
-- safetensors.h, agg.h, train.h (the trainers and the exec trainer's
-- process); kept in sync by hand (the headers are the contract).
-- ipk_errbuf_t and ipk_loop_t come from cdef/base.lua.
return [[
typedef struct {
  uint8_t key[32];
  uint64_t block;
  uint8_t buf[256];
  size_t pos;
} ipk_rng_t;
void ipk_rng_seed(ipk_rng_t *r, uint64_t seed, uint64_t stream);
uint64_t ipk_rng_u64(ipk_rng_t *r);
uint64_t ipk_rng_below(ipk_rng_t *r, uint64_t n);
double ipk_rng_uniform(ipk_rng_t *r);
double ipk_rng_normal(ipk_rng_t *r);
double ipk_rng_gamma(ipk_rng_t *r, double shape);
void ipk_rng_shuffle_u32(ipk_rng_t *r, uint32_t *idx, size_t n);

int ipk_partition_dirichlet(const uint8_t *labels, size_t n, int classes, int clients,
                            double alpha, uint64_t seed, size_t min_rows,
                            uint32_t *assign, ipk_errbuf_t *eb);

typedef struct {
  uint8_t dtype;
  int ndim;
  uint32_t dims[8];
  size_t count;
  size_t elem_size;
  uint8_t *data;
} ipk_idx_t;
int ipk_idx_load(const char *path, ipk_idx_t *out, ipk_errbuf_t *eb);
void ipk_idx_free(ipk_idx_t *idx);
int ipk_idx_to_f32(const ipk_idx_t *idx, double div, float *out, ipk_errbuf_t *eb);
typedef struct {
  const char *path;
  ipk_idx_t out;
  ipk_errbuf_t eb;
} ipk_idx_load_job_t;
int ipk_idx_load_job(void *arg);

typedef enum {
  IPK_DT_BOOL, IPK_DT_U8, IPK_DT_I8, IPK_DT_I16, IPK_DT_U16, IPK_DT_F16, IPK_DT_BF16,
  IPK_DT_I32, IPK_DT_U32, IPK_DT_F32, IPK_DT_F64, IPK_DT_I64, IPK_DT_U64,
  IPK_DT_F8_E4M3, IPK_DT_F8_E5M2, IPK_DT_F4,
  IPK_DT_C64, IPK_DT_F8_E8M0, IPK_DT_F8_E4M3FNUZ, IPK_DT_F8_E5M2FNUZ,
  IPK_DT_F6_E2M3, IPK_DT_F6_E3M2,
  IPK_DT__COUNT
} ipk_dtype_t;
typedef struct {
  const char *name;
  ipk_dtype_t dtype;
  int ndim;
  uint64_t shape[8];
  const void *data;
  size_t nbytes;
} ipk_st_tensor_t;
const char *ipk_dtype_name(ipk_dtype_t dt);
int ipk_dtype_from_name(const char *s, ipk_dtype_t *dt);
int ipk_dtype_bits(ipk_dtype_t dt);
int ipk_safetensors_write(const ipk_st_tensor_t *tensors, size_t n,
                          const char *const *meta_keys, const char *const *meta_vals,
                          size_t n_meta, uint8_t **out, size_t *outlen, ipk_errbuf_t *eb);
typedef struct ipk_st_file_s ipk_st_file_t;
int ipk_safetensors_parse(const uint8_t *buf, size_t len, ipk_st_file_t **out, ipk_errbuf_t *eb);
size_t ipk_safetensors_count(const ipk_st_file_t *f);
const ipk_st_tensor_t *ipk_safetensors_tensor(const ipk_st_file_t *f, size_t i);
const ipk_st_tensor_t *ipk_safetensors_find(const ipk_st_file_t *f, const char *name);
const char *ipk_safetensors_meta(const ipk_st_file_t *f, const char *key);
void ipk_safetensors_free(ipk_st_file_t *f);

enum {
  IPK_AGG_SIMD_AUTO = 0, IPK_AGG_SIMD_SCALAR = 1, IPK_AGG_SIMD_AVX2 = 2, IPK_AGG_SIMD_AVX512 = 3
};
typedef struct {
  int threads;
  int simd;
} ipk_agg_opts_t;
int ipk_agg_simd_supported(int simd);
const char *ipk_agg_simd_name(const ipk_agg_opts_t *opt, ipk_errbuf_t *eb);
int ipk_agg_wmean(const void *const *clients, ipk_dtype_t in_dt, const double *weights,
                  size_t nclients, size_t len, void *out, ipk_dtype_t out_dt,
                  const ipk_agg_opts_t *opt, ipk_errbuf_t *eb);
int ipk_agg_trimmed_mean(const void *const *clients, ipk_dtype_t in_dt, size_t nclients,
                         size_t cut, size_t len, void *out, ipk_dtype_t out_dt,
                         const ipk_agg_opts_t *opt, ipk_errbuf_t *eb);
int ipk_agg_median(const void *const *clients, ipk_dtype_t in_dt, size_t nclients, size_t len,
                   void *out, ipk_dtype_t out_dt, const ipk_agg_opts_t *opt, ipk_errbuf_t *eb);
int ipk_agg_sqdist(const void *const *clients, ipk_dtype_t in_dt, size_t nclients, size_t len,
                   double *dist, const ipk_agg_opts_t *opt, ipk_errbuf_t *eb);
int ipk_agg_sqnorm(const void *x, ipk_dtype_t dt, size_t len, double *out,
                   const ipk_agg_opts_t *opt, ipk_errbuf_t *eb);
int ipk_agg_scale(void *x, ipk_dtype_t dt, size_t len, double factor,
                  const ipk_agg_opts_t *opt, ipk_errbuf_t *eb);
int ipk_agg_first_nonfinite(const void *x, ipk_dtype_t dt, size_t len, size_t *first,
                            const ipk_agg_opts_t *opt, ipk_errbuf_t *eb);
int ipk_agg_fedavg_f32(const float *const *clients, const double *weights, size_t nclients,
                       size_t len, float *out, ipk_errbuf_t *eb);
int ipk_agg_fedavg_f64(const double *const *clients, const double *weights, size_t nclients,
                       size_t len, double *out, ipk_errbuf_t *eb);
int ipk_agg_weighted_mean(const double *values, const double *weights, size_t n, double *out,
                          ipk_errbuf_t *eb);
int ipk_agg_check_shape(const uint64_t *ref, int ref_ndim, const uint64_t *shape, int ndim,
                        size_t client, ipk_errbuf_t *eb);

enum { IPK_TRAIN_MAX_HIDDEN = 8, IPK_HEAD_SOFTMAX = 0, IPK_HEAD_LOGISTIC = 1, IPK_HEAD_LINEAR = 2 };
typedef struct {
  int head;
  int features;
  int outputs;
  int nhidden;
  int hidden[8];
} ipk_train_net_t;
typedef struct {
  int epochs;
  int batch;
  float lr;
  float l2;
  float proximal_mu;
  uint64_t seed;
} ipk_train_opts_t;
typedef struct {
  const float *X;
  const uint8_t *labels;
  const float *targets;
  const uint32_t *idx;
  size_t n;
} ipk_train_data_t;
int ipk_train_check_net(const ipk_train_net_t *net, ipk_errbuf_t *eb);
int ipk_train_init_params(const ipk_train_net_t *net, float *const *params, uint64_t seed,
                          ipk_errbuf_t *eb);
int ipk_train_fit(const ipk_train_net_t *net, const ipk_train_opts_t *o, float *const *params,
                  const float *const *global, const ipk_train_data_t *d, double *mean_loss,
                  ipk_errbuf_t *eb);
int ipk_train_eval(const ipk_train_net_t *net, const float *const *params,
                   const ipk_train_data_t *d, double *loss, double *accuracy, ipk_errbuf_t *eb);
int ipk_train_predict(const ipk_train_net_t *net, const float *const *params,
                      const ipk_train_data_t *d, float *out, ipk_errbuf_t *eb);
typedef struct {
  ipk_train_net_t net;
  ipk_train_opts_t opts;
  float *const *params;
  const float *const *global;
  ipk_train_data_t data;
  double loss;
  ipk_errbuf_t eb;
} ipk_train_fit_job_t;
int ipk_train_fit_job(void *arg);
typedef struct {
  ipk_train_net_t net;
  const float *const *params;
  ipk_train_data_t data;
  double loss;
  double accuracy;
  ipk_errbuf_t eb;
} ipk_train_eval_job_t;
int ipk_train_eval_job(void *arg);

typedef struct {
  int features, classes;
  int epochs;
  int batch;
  float lr;
  float l2;
  uint64_t seed;
} ipk_softmax_cfg_t;
int ipk_softmax_train(const ipk_softmax_cfg_t *cfg, float *W, float *b,
                      const float *X, const uint8_t *y, const uint32_t *idx, size_t n,
                      double *mean_loss, ipk_errbuf_t *eb);
int ipk_softmax_eval(int features, int classes, const float *W, const float *b,
                     const float *X, const uint8_t *y, size_t n,
                     double *loss, double *accuracy, ipk_errbuf_t *eb);
void ipk_train_init(void);
typedef struct ipk_train_proc_s ipk_train_proc_t;
typedef struct {
  const char *const *argv;
  const char *cwd;
  const char *const *env_add;
  const char *stdout_path;
  const char *stderr_path;
  uint64_t timeout_ms;
} ipk_train_spawn_opts_t;
int ipk_train_spawn(ipk_loop_t *loop, const ipk_train_spawn_opts_t *o, ipk_train_proc_t **out,
                    uint64_t *id, ipk_errbuf_t *eb);
int64_t ipk_train_proc_pid(const ipk_train_proc_t *p);
int ipk_train_proc_status(const ipk_train_proc_t *p, int64_t *exit_status, int *term_signal);
void ipk_train_proc_free(ipk_train_proc_t *p);
typedef struct {
  ipk_softmax_cfg_t cfg;
  float *W;
  float *b;
  const float *X;
  const uint8_t *y;
  const uint32_t *idx;
  size_t n;
  double loss;
  ipk_errbuf_t eb;
} ipk_softmax_train_job_t;
int ipk_softmax_train_job(void *arg);
typedef struct {
  int features, classes;
  const float *W;
  const float *b;
  const float *X;
  const uint8_t *y;
  size_t n;
  double loss;
  double accuracy;
  ipk_errbuf_t eb;
} ipk_softmax_eval_job_t;
int ipk_softmax_eval_job(void *arg);
]]
