// Soft capping in place (Gemma 2's final logits): x = cap * tanh(x / cap), as llama.cpp applies it (scale by 1 / cap,
// tanh, scale by cap).
#include "common.cuh"

extern "C" __global__ void soft_cap_f32(float* __restrict__ x, float cap, int n) {
    const int i = blockIdx.x * blockDim.x + threadIdx.x;
    if (i >= n) return;
    x[i] = tanhf(x[i] * (1.0f / cap)) * cap;
}
