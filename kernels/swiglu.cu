// SwiGLU in place: gate = silu(gate) * up = gate / (1 + exp(-gate)) * up.
#include "common.cuh"

extern "C" __global__ void swiglu_f32(float* __restrict__ gate, const float* __restrict__ up, int n) {
    const int i = blockIdx.x * blockDim.x + threadIdx.x;
    if (i >= n) return;
    const float g = gate[i];
    gate[i] = g / (1.0f + expf(-g)) * up[i];
}
