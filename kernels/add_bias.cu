// Bias add: x (rows, cols) += b (cols), row by row (Qwen2's Q/K/V biases). One thread per element.
#include "common.cuh"

extern "C" __global__ void add_bias_f32(float* __restrict__ x, const float* __restrict__ b, int cols, long n) {
    const long i = (long)blockIdx.x * blockDim.x + threadIdx.x;
    if (i < n) x[i] += b[i % cols];
}
