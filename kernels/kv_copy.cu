// KV-cache copy within a layer's paged pools: pairs (from[i], to[i]) of pool slots, kv_dim halves each, for K and V.
// The pairs are applied in order (pair i sees what pairs before it wrote), because an accepted draft path compacts
// by moving rows down one after another, and a later move may read a slot an earlier one filled. One block does all
// the pairs of a layer, with a barrier between pairs; the copies are tiny (a path of a few rows), the order is what
// matters. The host checks every slot is inside the pools.
#include "common.cuh"

extern "C" __global__ void kv_copy_f16(__half* __restrict__ k_pool, __half* __restrict__ v_pool,
                                       const int* __restrict__ from, const int* __restrict__ to, int pairs,
                                       int kv_dim) {
    for (int i = 0; i < pairs; ++i) {
        const long src = (long)from[i] * kv_dim, dst = (long)to[i] * kv_dim;
        for (int j = threadIdx.x; j < kv_dim; j += blockDim.x) {
            k_pool[dst + j] = k_pool[src + j];
            v_pool[dst + j] = v_pool[src + j];
        }
        __syncthreads();  // pair i is written before pair i + 1 reads
    }
}
