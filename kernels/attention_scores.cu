// Attention scores: for the scored rows of a ragged step, what each cached position of their sequence receives,
// summed over the rows and every query head, and added to that sequence's accumulator (a later layer adds to the same
// accumulator, so the host reads the sum over layers). The CPU backend computes the same sums inside its fused
// attention; here the flash kernel's online softmax never holds a row's final normalizer at the moment it sees a
// key, so the scores are a pass of their own, run only when a KV budget or prompt pruning asks for them.
// What a position receives from a (row, head) is exp(z - lse), z its logit and lse the log-sum-exp of the row's z:
//   probability    z = q·k / sqrt(d)                  (H2O, SnapKV, LazyLLM, SpAtten)
//   Gumbel         z = (q·k / sqrt(d) + g) / tau      (Keyformer), g = -ln(-ln u) with u a counter hash of the seed,
//                  the layer, the head, the cached position and the row's RoPE position: the CPU's draw (the hash
//                  exactly; -log(-log u) in double, to the device's double rounding).
// A position is visible to a row as in flash attention: at or before the row's cache position, its ancestor bit set
// when it is a row of the same tree, and outside the sequence's hidden range (a pruned prompt's rows this layer lacks).
// As flash attention, q is rounded to F16 before the dot product with the F16 keys.
// Three entry points, launched in this order by interop/Kernels/AttentionScores.cs:
//   attention_scores_lse     grid (scored rows, heads), one warp: the row's lse for that head.
//   attention_scores_heads   grid (ceil(positions / 128), scored sequences, heads), 128 threads: one thread per
//                            position sums exp(z - lse) over the sequence's scored rows into part[head][position].
//   attention_scores_reduce  grid (ceil(total / 256)), 256 threads: acc[i] += the sum over heads of part[.][i], heads
//                            in order, so the result does not depend on scheduling (no atomics); the step's first
//                            layer writes acc[i] instead.
// Layout (ints): one descriptor of AS_SEQ ints per scored sequence, then one int per scored row (its sequence's
// descriptor index); the descriptor: batch row of the first scored row, scored rows, cache position of the first
// scored row, block table offset, tree start (cache position; AS_CHAIN for a chain), hidden start, hidden end,
// accumulator offset, positions (the accumulator's length), kind (0 probability, 1 Gumbel), 1/tau (float bits), seed
// low and high words, index of its first scored row in the row list (and in lse, which is [scored rows][heads]).
#include "common.cuh"

#define AS_SEQ 14
#define AS_CHAIN 0x7fffffff

__device__ __forceinline__ float as_gumbel(unsigned long long seed, int layer, int head, int position, int row) {
    // AttentionScores.Gumbel: SplitMix64's finalizer over the seed and the indices.
    unsigned long long z = seed ^ (unsigned long long)(unsigned)row * 0x9E3779B97F4A7C15ULL
        ^ (((unsigned long long)(unsigned)layer << 48) | ((unsigned long long)(unsigned)head << 32) | (unsigned)position)
              * 0xC2B2AE3D27D4EB4FULL;
    z = (z ^ (z >> 30)) * 0xBF58476D1CE4E5B9ULL;
    z = (z ^ (z >> 27)) * 0x94D049BB133111EBULL;
    z ^= z >> 31;
    const double u = ((double)(z >> 11) + 0.5) * (1.0 / 9007199254740992.0);  // 2^-53
    return (float)-log(-log(u));
}

// Whether position p is visible to batch row r at cache position cpos of the sequence described by d.
__device__ __forceinline__ bool as_visible(const int* d, const unsigned* masks, int r, int cpos, int p) {
    if (p > cpos || (p >= d[5] && p < d[6])) return false;
    const int t = d[4];
    if (p < t) return true;
    const int j = p - t;  // < 128: the host checks tree sizes
    return (masks[4 * r + (j >> 5)] >> (j & 31)) & 1u;
}

// z of position p (cache slot `slot`) for batch row r, query head h.
__device__ __forceinline__ float as_logit(const float* q, const __half* k_pool, const int* d, int r, int h, int p, long slot,
                                          int heads, int kvh, int kv_dim, int hd, float scale, int layer, int row_pos) {
    const float* qr = q + ((long)r * heads + h) * hd;
    const __half* kr = k_pool + slot * kv_dim + (long)kvh * hd;
    float s = 0.0f;
    for (int i = 0; i < hd; ++i) s += __half2float(__float2half_rn(qr[i])) * __half2float(kr[i]);
    s *= scale;
    if (d[9] == 0) return s;
    const unsigned long long seed = ((unsigned long long)(unsigned)d[12] << 32) | (unsigned)d[11];
    return (s + as_gumbel(seed, layer, h, p, row_pos)) * __int_as_float(d[10]);
}

__device__ __forceinline__ long as_slot(const int* table, int p, int block_shift) {
    return ((long)table[p >> block_shift] << block_shift) | (p & ((1 << block_shift) - 1));
}

extern "C" __global__ void __launch_bounds__(32) attention_scores_lse(
    const float* __restrict__ q, const __half* __restrict__ k_pool, const int* __restrict__ tables,
    const unsigned* __restrict__ masks, const int* __restrict__ positions, const int* __restrict__ layout, int seqs,
    float* __restrict__ lse, int heads, int kv_heads, int head_dim, int block_shift, float scale, int layer) {
    const int j = blockIdx.x, h = blockIdx.y, lane = threadIdx.x;
    const int* d = layout + AS_SEQ * layout[AS_SEQ * seqs + j];
    const int i = j - d[13], r = d[0] + i, cpos = d[2] + i;
    const int kvh = h / (heads / kv_heads), kv_dim = kv_heads * head_dim;
    const int* table = tables + d[3];
    // Each lane an online max and sum over its positions; then the warp combines them.
    float m = -INFINITY, l = 0.0f;
    for (int p = lane; p <= cpos; p += 32) {
        if (!as_visible(d, masks, r, cpos, p)) continue;
        const float z = as_logit(q, k_pool, d, r, h, p, as_slot(table, p, block_shift), heads, kvh, kv_dim, head_dim,
                                 scale, layer, positions[r]);
        const float m_new = fmaxf(m, z);
        l = l * expf(m - m_new) + expf(z - m_new);
        m = m_new;
    }
    const float mw = ts_warp_max(m);  // finite: the row itself is always visible
    const float lw = ts_warp_sum(m == -INFINITY ? 0.0f : l * expf(m - mw));
    if (lane == 0) lse[(long)j * heads + h] = mw + logf(lw);
}

extern "C" __global__ void __launch_bounds__(128) attention_scores_heads(
    const float* __restrict__ q, const __half* __restrict__ k_pool, const int* __restrict__ tables,
    const unsigned* __restrict__ masks, const int* __restrict__ positions, const int* __restrict__ layout,
    const float* __restrict__ lse, float* __restrict__ part, int total, int heads, int kv_heads, int head_dim,
    int block_shift, float scale, int layer) {
    const int* d = layout + AS_SEQ * blockIdx.y;
    const int p = blockIdx.x * blockDim.x + threadIdx.x, h = blockIdx.z;
    if (p >= d[8]) return;
    const int kvh = h / (heads / kv_heads), kv_dim = kv_heads * head_dim;
    const long slot = as_slot(tables + d[3], p, block_shift);
    float sum = 0.0f;
    for (int i = 0; i < d[1]; ++i) {
        const int r = d[0] + i, cpos = d[2] + i;
        if (!as_visible(d, masks, r, cpos, p)) continue;
        const float z = as_logit(q, k_pool, d, r, h, p, slot, heads, kvh, kv_dim, head_dim, scale, layer, positions[r]);
        sum += expf(z - lse[(long)(d[13] + i) * heads + h]);
    }
    part[(long)h * total + d[7] + p] = sum;
}

extern "C" __global__ void __launch_bounds__(256) attention_scores_reduce(
    const float* __restrict__ part, float* __restrict__ acc, int total, int heads, int first) {
    const int i = blockIdx.x * blockDim.x + threadIdx.x;
    if (i >= total) return;
    float s = 0.0f;
    for (int h = 0; h < heads; ++h) s += part[(long)h * total + i];
    acc[i] = first ? s : acc[i] + s;  // the step's first layer writes: the accumulator needs no clearing pass
}
