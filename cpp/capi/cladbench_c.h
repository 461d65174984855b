/* cladbench's C ABI: a training run fed batch by batch by a caller that cannot or should not see
 * LibTorch's C++ headers, such as a ROOT macro under cling (cpp/root/train_mnist.C). Plain C:
 * opaque handles, no exceptions across it. A call that fails returns NULL, a negative number or
 * NaN, and cladbench_last_error() says why. The run behind a handle is cladbench::FedRun
 * (cpp/trainer/trainer.hpp): the engines, clock, checks and run record of cladbench-train. */
#pragma once

#ifdef __cplusplus
extern "C" {
#endif

typedef struct cladbench_run cladbench_run;

/* Why the last failing call on this thread failed ("" if none did). */
const char* cladbench_last_error(void);

/* 1 when this library was built with the engine ("clad" needs Clad at build time; "manual" and
 * "libtorch" are always there), else 0. */
int cladbench_has_engine(const char* engine);

/* A run of `engine` (clad, manual, libtorch) in `layout` (rowmajor, colmajor) and `alloc` (arena,
 * dynamic) on n_train samples of `features` floats in `classes` classes. `options`: cladbench-train's
 * flags, space-separated, e.g. "--hidden 128 --batch 32 --epochs 3 --lr 0.1 --seed 1
 * --train-range 0:8000 --test-range 8000:10000 --input ttree-macro --data mnist.root --out run.json".
 * NULL on bad arguments. */
cladbench_run* cladbench_run_create(const char* engine, const char* layout, const char* alloc, const char* options,
                                    long n_train, int features, int classes);
void cladbench_run_destroy(cladbench_run* run);

int cladbench_run_batch(const cladbench_run* run);
int cladbench_run_epochs(const cladbench_run* run);
int cladbench_run_steps_per_epoch(const cladbench_run* run);

/* Writes the n_train sample indices of epoch `epoch` (0-based) into `order`, in the order to feed
 * them: the same shuffle as cladbench-train's with the same --seed. 0, or -1 on error. */
int cladbench_run_epoch_order(const cladbench_run* run, int epoch, long* order);

/* The test set (n samples), before the first end_epoch. 0, or -1 on error. */
int cladbench_run_set_test(cladbench_run* run, const float* x, const int* labels, long n);

/* Records a version in the run record's versions, e.g. ("root", gROOT->GetVersion()). */
int cladbench_run_set_version(cladbench_run* run, const char* name, const char* value);

/* One training step on `batch` samples (x: batch x features floats, labels: batch ints); returns
 * the batch loss. NaN when the loss is not finite (the run has failed: stop feeding it) or on
 * error. */
double cladbench_run_step(cladbench_run* run, const float* x, const int* labels);

/* After each epoch's steps: the epoch's training loss, test loss and accuracy. 0, or -1 on error. */
int cladbench_run_end_epoch(cladbench_run* run);

/* Writes the run record (to --out, else stdout). 0 trained, 3 training failed, -1 on error. */
int cladbench_run_finish(cladbench_run* run);

#ifdef __cplusplus
}
#endif
