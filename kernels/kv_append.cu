// KV-cache append: rows x kv_dim floats of k and v, rounded to F16 (round-to-nearest-even, as the CPU's Half
// conversion), written into the layer's cache.
#include "common.cuh"

// Contiguous cache: element i goes to cache[pos * kv_dim + i], pos the first row's position: *pos_ptr when pos_ptr
// is not null (a captured decode graph reads it from device memory), else start_pos.
extern "C" __global__ void kv_append_f16(const float* __restrict__ k, const float* __restrict__ v,
                                         __half* __restrict__ kc, __half* __restrict__ vc, int n, int kv_dim,
                                         int start_pos, const int* __restrict__ pos_ptr) {
    const int i = blockIdx.x * blockDim.x + threadIdx.x;
    if (i >= n) return;
    const long dst = (long)(pos_ptr ? *pos_ptr : start_pos) * kv_dim + i;
    kc[dst] = __float2half_rn(k[i]);
    vc[dst] = __float2half_rn(v[i]);
}

// Paged cache (a ragged batch): row r goes to pool slot row_slot[r], i.e. pool[row_slot[r] * kv_dim + j]. The host
// resolves each row's slot through its sequence's block table (table[pos / block] * block + pos % block) and checks
// every slot is inside the pool before the launch, so the kernel does no table arithmetic of its own.
extern "C" __global__ void kv_append_f16_paged(const float* __restrict__ k, const float* __restrict__ v,
                                               __half* __restrict__ k_pool, __half* __restrict__ v_pool, int n,
                                               int kv_dim, const int* __restrict__ row_slot) {
    const int i = blockIdx.x * blockDim.x + threadIdx.x;
    if (i >= n) return;
    const int r = i / kv_dim, j = i - r * kv_dim;
    const long dst = (long)row_slot[r] * kv_dim + j;
    k_pool[dst] = __float2half_rn(k[i]);
    v_pool[dst] = __float2half_rn(v[i]);
}
