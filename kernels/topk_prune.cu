// Token-pruning top-k: out[0..k) = the indices of the k largest of x[0..n), in ascending index order, ties to the
// lower index (the CPU op, Tessera.Kv.TopK, gives the same set). One block of blockDim threads (a multiple of 32,
// <= 1024): a radix select on the order-preserving bits of each float (4 passes of 8 bits, most significant first)
// finds the k-th largest key T and how many equal keys to take; a final pass in index order writes every index whose
// key is above T, and the first `take` whose key equals T, at its rank among the chosen (block-wide prefix counts by
// warp ballots). No scratch beyond shared memory: n up to 2^31 - 1; used on score vectors up to a context's length.
#include "common.cuh"

// Unsigned order of the bits is numeric order of the floats; -0 is taken as +0 (equal numbers: a tie, broken by
// index). NaN are not expected.
__device__ __forceinline__ uint32_t ts_orderable(float f) {
    const uint32_t b = f == 0.0f ? 0u : __float_as_uint(f);
    return (b & 0x80000000u) ? ~b : (b | 0x80000000u);
}

extern "C" __global__ void topk_prune_f32(const float* __restrict__ x, int n, int k, int* __restrict__ out) {
    __shared__ uint32_t hist[256];
    __shared__ uint32_t s_prefix, s_need;
    __shared__ int warp_sel[32], warp_eq[32];
    __shared__ int s_written, s_eq_seen;
    const int tid = threadIdx.x, lane = tid & 31, warp = tid >> 5, nwarps = blockDim.x >> 5;
    if (k <= 0) return;
    if (tid == 0) { s_prefix = 0; s_need = (uint32_t)k; s_written = 0; s_eq_seen = 0; }
    __syncthreads();

    // Radix select: after the pass on bits [shift, shift + 8), s_prefix holds the k-th largest key's bits from
    // `shift` up, and s_need how many keys with exactly those bits still belong to the top k.
    for (int shift = 24; shift >= 0; shift -= 8) {
        for (int i = tid; i < 256; i += blockDim.x) hist[i] = 0;
        __syncthreads();
        const uint32_t prefix = s_prefix;
        const uint32_t high = shift == 24 ? 0u : (0xffffffffu << (shift + 8));
        for (int i = tid; i < n; i += blockDim.x) {
            const uint32_t key = ts_orderable(x[i]);
            if ((key & high) == (prefix & high)) atomicAdd(&hist[(key >> shift) & 255u], 1u);
        }
        __syncthreads();
        if (tid == 0) {
            uint32_t need = s_need, above = 0;
            int d = 255;
            for (; d > 0; d--) {
                if (above + hist[d] >= need) break;
                above += hist[d];
            }
            s_prefix = prefix | ((uint32_t)d << shift);
            s_need = need - above;
        }
        __syncthreads();
    }
    const uint32_t T = s_prefix;
    const int take = (int)s_need;  // keys equal to T that are chosen: the `take` of lowest index

    // Compaction in index order, a tile of blockDim elements at a time.
    const uint32_t lt = (1u << lane) - 1u;
    for (int base = 0; base < n; base += blockDim.x) {
        const int i = base + tid;
        const uint32_t key = i < n ? ts_orderable(x[i]) : 0u;
        const bool eq = i < n && key == T, gt = i < n && key > T;
        const uint32_t eq_mask = __ballot_sync(0xffffffffu, eq);
        if (lane == 0) warp_eq[warp] = __popc(eq_mask);
        __syncthreads();
        int eq_before = s_eq_seen;
        for (int w = 0; w < warp; w++) eq_before += warp_eq[w];
        eq_before += __popc(eq_mask & lt);
        const bool sel = gt || (eq && eq_before < take);
        const uint32_t sel_mask = __ballot_sync(0xffffffffu, sel);
        if (lane == 0) warp_sel[warp] = __popc(sel_mask);
        __syncthreads();
        int rank = s_written;
        for (int w = 0; w < warp; w++) rank += warp_sel[w];
        rank += __popc(sel_mask & lt);
        if (sel) out[rank] = i;
        __syncthreads();
        if (tid == 0) {
            int tile_sel = 0, tile_eq = 0;
            for (int w = 0; w < nwarps; w++) { tile_sel += warp_sel[w]; tile_eq += warp_eq[w]; }
            s_written += tile_sel;
            s_eq_seen += tile_eq;
        }
        __syncthreads();
    }
}
