// Split-KV causal attention over an F16 cache with grouped-query heads (flash-decoding):
//   attention_decode_f16_partial: grid (splits, heads, rows), one block per (query row, head, chunk of positions):
//     scores, chunk max m, sum l = sum exp(s - m) and o = sum exp(s - m) * v  ->  scratch.
//   attention_decode_f16_combine: grid (heads, rows): rescales the chunks to the global max and normalizes.
// Query row i is at position start_pos + i and sees positions 0..start_pos + i. Query head h reads key/value head
// h / (heads / kv_heads). As llama.cpp, q is rounded to F16 before the dot product with the F16 keys.
// Dynamic shared memory: chunk floats (scores) + head_dim floats (q). blockDim a multiple of 32.
// pos_ptr: when not null, start_pos is read from it (a captured decode graph: one graph for every position, launched
// with the splits of the whole cache; chunks past the position write an empty partial, which combine skips).
#include "common.cuh"

extern "C" __global__ void attention_decode_f16_partial(
    const float* __restrict__ q, const __half* __restrict__ kc, const __half* __restrict__ vc,
    float* __restrict__ part_o, float* __restrict__ part_ml,
    int heads, int kv_heads, int head_dim, int start_pos, const int* __restrict__ pos_ptr, int chunk, float scale) {
    TS_DYNAMIC_SMEM(float, smem);
    float* scores = smem;
    float* qs = smem + chunk;
    const int split = blockIdx.x, h = blockIdx.y, row = blockIdx.z, splits = gridDim.x;
    const int kvh = h / (heads / kv_heads), kv_dim = kv_heads * head_dim;
    const int pos = (pos_ptr ? *pos_ptr : start_pos) + row;
    const int p0 = split * chunk, p1 = min(p0 + chunk, pos + 1);
    const long slot = ((long)row * heads + h) * splits + split;
    const float* qr = q + ((long)row * heads + h) * head_dim;
    for (int d = threadIdx.x; d < head_dim; d += blockDim.x) qs[d] = __half2float(__float2half_rn(qr[d]));
    __syncthreads();

    if (p0 >= p1) {  // this chunk lies beyond the causal limit of this row
        for (int d = threadIdx.x; d < head_dim; d += blockDim.x) part_o[slot * head_dim + d] = 0.0f;
        if (threadIdx.x == 0) { part_ml[2 * slot] = -INFINITY; part_ml[2 * slot + 1] = 0.0f; }
        return;
    }
    const int lane = threadIdx.x & 31, warp = threadIdx.x >> 5, nwarps = blockDim.x >> 5;
    for (int p = p0 + warp; p < p1; p += nwarps) {  // one warp per key
        const __half* k = kc + (long)p * kv_dim + kvh * head_dim;
        float s = 0.0f;
        for (int d = lane; d < head_dim; d += 32) s += qs[d] * __half2float(k[d]);
        s = ts_warp_sum(s);
        if (lane == 0) scores[p - p0] = s * scale;
    }
    __syncthreads();
    const int n = p1 - p0;
    float m = -INFINITY;
    for (int i = threadIdx.x; i < n; i += blockDim.x) m = fmaxf(m, scores[i]);
    m = ts_block_max(m);
    float l = 0.0f;
    for (int i = threadIdx.x; i < n; i += blockDim.x) {
        const float e = expf(scores[i] - m);
        scores[i] = e;
        l += e;
    }
    l = ts_block_sum(l);  // synchronizes, so every e is visible below
    for (int d = threadIdx.x; d < head_dim; d += blockDim.x) {
        const __half* v = vc + (long)p0 * kv_dim + kvh * head_dim + d;
        float o = 0.0f;
        for (int i = 0; i < n; ++i) o += scores[i] * __half2float(v[(long)i * kv_dim]);
        part_o[slot * head_dim + d] = o;
    }
    if (threadIdx.x == 0) { part_ml[2 * slot] = m; part_ml[2 * slot + 1] = l; }
}

extern "C" __global__ void attention_decode_f16_combine(
    const float* __restrict__ part_o, const float* __restrict__ part_ml, float* __restrict__ out,
    int heads, int head_dim, int splits) {
    const int h = blockIdx.x, row = blockIdx.y;
    const long base = ((long)row * heads + h) * splits;
    float m = -INFINITY;
    for (int s = 0; s < splits; ++s) m = fmaxf(m, part_ml[2 * (base + s)]);
    float l = 0.0f;
    for (int s = 0; s < splits; ++s) {
        const float ms = part_ml[2 * (base + s)];
        if (ms != -INFINITY) l += expf(ms - m) * part_ml[2 * (base + s) + 1];
    }
    const float inv = 1.0f / l;
    float* o = out + ((long)row * heads + h) * head_dim;
    for (int d = threadIdx.x; d < head_dim; d += blockDim.x) {
        float acc = 0.0f;
        for (int s = 0; s < splits; ++s) {
            const float ms = part_ml[2 * (base + s)];
            if (ms != -INFINITY) acc += expf(ms - m) * part_o[(base + s) * head_dim + d];
        }
        o[d] = acc * inv;
    }
}
