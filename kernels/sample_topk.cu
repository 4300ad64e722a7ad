// Sampling on the device: top-k, then top-p and min-p on the softmax at temperature 1, then the temperature and a
// draw with a uniform number u in [0, 1) chosen by the host; only the token id leaves the device. The steps and their
// arithmetic (float exponentials, double sums, the same comparisons, in the same order) are the CPU Sampler's
// (engine/Sampling/Sampler.cs), so for the same logits and u both pick the same token.
// One block of 1024 threads:
//   1. radix select (4 passes of 8 bits over order-preserving integer keys): the key T of the k-th largest logit and
//      how many logits equal to T belong to the top k (the lowest-indexed ones, as the CPU keeps the earlier index);
//   2. gather the k candidates as 64-bit (key, ~index) pairs and bitonic-sort them descending: logit descending,
//      index ascending on ties;
//   3. one thread walks the k sorted candidates (k <= SAMPLE_MAX_K) exactly as the CPU does.
// temperature <= 0 means greedy: k = 1, the largest logit, lowest index on ties (the CPU's ArgMax).
// Logits must not be NaN (-inf is fine).
#include "common.cuh"

#define SAMPLE_MAX_K 1024

// Larger float -> larger unsigned key; -0 is made +0 first so that the two zeros tie as they compare equal.
__device__ __forceinline__ uint32_t sample_key(float f) {
    const uint32_t u = __float_as_uint(f + 0.0f);
    return (u & 0x80000000u) ? ~u : (u | 0x80000000u);
}

__device__ __forceinline__ void sample_one(const float* __restrict__ logits, int n, int top_k, float top_p, float min_p,
                                           float temperature, double uniform, int* __restrict__ out) {
    __shared__ unsigned long long cand[SAMPLE_MAX_K];
    __shared__ float probs[SAMPLE_MAX_K];
    __shared__ uint32_t hist[256];
    __shared__ uint32_t warp_eq[32];
    __shared__ uint32_t s_prefix, s_remaining, s_gt, s_eq_base;
    const int tid = threadIdx.x, lane = tid & 31, warp = tid >> 5, nwarps = blockDim.x >> 5;
    const int k = temperature <= 0.0f ? 1 : (top_k > 0 && top_k < n ? top_k : n);  // the launcher checks k <= SAMPLE_MAX_K

    // 1. Radix select of the k-th largest key, most significant byte first.
    uint32_t prefix = 0, mask = 0, remaining = (uint32_t)k;
    for (int shift = 24; shift >= 0; shift -= 8) {
        for (int i = tid; i < 256; i += blockDim.x) hist[i] = 0;
        __syncthreads();
        for (int i = tid; i < n; i += blockDim.x) {
            const uint32_t u = sample_key(logits[i]);
            if ((u & mask) == prefix) atomicAdd(&hist[(u >> shift) & 255u], 1u);
        }
        __syncthreads();
        if (tid == 0) {
            uint32_t above = 0;  // keys matching the prefix with a larger digit
            for (int b = 255; b >= 0; --b) {
                if (above + hist[b] >= remaining) {
                    s_prefix = prefix | ((uint32_t)b << shift);
                    s_remaining = remaining - above;
                    break;
                }
                above += hist[b];
            }
        }
        __syncthreads();
        prefix = s_prefix;
        remaining = s_remaining;
        mask |= 255u << shift;
    }
    const uint32_t T = prefix, take_eq = remaining;  // k - take_eq keys are above T; take_eq of those equal to T

    // 2. Gather: keys above T anywhere (their order is fixed by the sort), keys equal to T in index order.
    if (tid == 0) { s_gt = 0; s_eq_base = 0; }
    __syncthreads();
    for (int base = 0; base < n; base += blockDim.x) {
        const int i = base + tid;
        const uint32_t u = i < n ? sample_key(logits[i]) : 0u;
        const bool gt = i < n && u > T, eq = i < n && u == T;
        const unsigned long long packed = ((unsigned long long)u << 32) | (uint32_t)(0xffffffffu - (uint32_t)i);
        if (gt) cand[atomicAdd(&s_gt, 1u)] = packed;
        const uint32_t ballot = __ballot_sync(0xffffffffu, eq);
        if (lane == 0) warp_eq[warp] = __popc(ballot);
        __syncthreads();
        uint32_t rank = s_eq_base + __popc(ballot & ((1u << lane) - 1u));
        for (int w = 0; w < warp; ++w) rank += warp_eq[w];
        if (eq && rank < take_eq) cand[(uint32_t)k - take_eq + rank] = packed;
        __syncthreads();
        if (tid == 0) {
            uint32_t total = 0;
            for (int w = 0; w < nwarps; ++w) total += warp_eq[w];
            s_eq_base += total;
        }
        __syncthreads();
    }

    // Bitonic sort, descending, over the next power of two >= k; the padding (0) sorts last.
    int sort_n = 2;
    while (sort_n < k) sort_n <<= 1;
    for (int i = k + tid; i < sort_n; i += blockDim.x) cand[i] = 0ull;
    __syncthreads();
    for (int size = 2; size <= sort_n; size <<= 1) {
        for (int stride = size >> 1; stride > 0; stride >>= 1) {
            for (int i = tid; i < sort_n; i += blockDim.x) {
                const int j = i ^ stride;
                if (j > i) {
                    const unsigned long long a = cand[i], b = cand[j];
                    const bool descending = (i & size) == 0;
                    if (descending ? a < b : a > b) { cand[i] = b; cand[j] = a; }
                }
            }
            __syncthreads();
        }
    }

    // 3. The CPU Sampler's walk over the sorted candidates.
    if (tid != 0) return;
#define SAMPLE_ID(c) ((int)(0xffffffffu - (uint32_t)(cand[c] & 0xffffffffull)))
    if (temperature <= 0.0f) { out[0] = SAMPLE_ID(0); return; }
    const float mx = logits[SAMPLE_ID(0)];
    double sum = 0.0;
    for (int c = 0; c < k; ++c) {
        const float e = expf(logits[SAMPLE_ID(c)] - mx);
        probs[c] = e;
        sum += e;
    }
    int kk = k;
    if (top_p < 1.0f) {
        double cum = 0.0;
        for (int c = 0; c < kk; ++c) {
            cum += probs[c] / sum;
            if (cum >= (double)top_p) { kk = c + 1; break; }
        }
    }
    if (min_p > 0.0f) {
        const float threshold = probs[0] * min_p;
        int keep = 1;
        while (keep < kk && probs[keep] >= threshold) ++keep;
        kk = keep;
    }
    double total = 0.0;
    for (int c = 0; c < kk; ++c) {
        const float e = expf((logits[SAMPLE_ID(c)] - mx) / temperature);
        probs[c] = e;
        total += e;
    }
    const double u = uniform * total;
    double acc = 0.0;
    for (int c = 0; c < kk; ++c) {
        acc += probs[c];
        if (u < acc) { out[0] = SAMPLE_ID(c); return; }
    }
    out[0] = SAMPLE_ID(kk - 1);
#undef SAMPLE_ID
}

extern "C" __global__ void __launch_bounds__(1024) sample_topk_f32(
    const float* __restrict__ logits, int n, int top_k, float top_p, float min_p, float temperature, double uniform,
    int* __restrict__ out) {
    sample_one(logits, n, top_k, top_p, min_p, temperature, uniform, out);
}

// Several draws in one launch (a batch of sequences, each with its own options): block b reads its request from
// requests[8b .. 8b+7] = {logits row, top_k, top_p, min_p, temperature (float bits), uniform (double, low and high
// words), unused} and writes out[b]; the logits of row r are logits[r * n .. r * n + n).
extern "C" __global__ void __launch_bounds__(1024, 1) sample_topk_f32_rows(
    const float* __restrict__ logits, int n, const int* __restrict__ requests, int* __restrict__ out) {
    const int* q = requests + 8 * blockIdx.x;
    const double uniform = __hiloint2double(q[6], q[5]);
    sample_one(logits + (long)q[0] * n, n, q[1], __int_as_float(q[2]), __int_as_float(q[3]), __int_as_float(q[4]),
               uniform, out + blockIdx.x);
}
