// x *= factor in place (Gemma's embeddings, scaled by sqrt(dim)).
#include "common.cuh"

extern "C" __global__ void scale_f32(float* __restrict__ x, float factor, int n) {
    const int i = blockIdx.x * blockDim.x + threadIdx.x;
    if (i >= n) return;
    x[i] *= factor;
}
