// KV-cache append: rows x kv_dim floats of k and v, rounded to F16 (round-to-nearest-even, as the CPU's Half
// conversion), written into the layer's cache at position pos onwards: element i goes to cache[pos * kv_dim + i].
// pos is *pos_ptr when pos_ptr is not null (a captured decode graph reads it from device memory), else start_pos.
#include "common.cuh"

extern "C" __global__ void kv_append_f16(const float* __restrict__ k, const float* __restrict__ v,
                                         __half* __restrict__ kc, __half* __restrict__ vc, int n, int kv_dim,
                                         int start_pos, const int* __restrict__ pos_ptr) {
    const int i = blockIdx.x * blockDim.x + threadIdx.x;
    if (i >= n) return;
    const long dst = (long)(pos_ptr ? *pos_ptr : start_pos) * kv_dim + i;
    kc[dst] = __float2half_rn(k[i]);
    vc[dst] = __float2half_rn(v[i]);
}
