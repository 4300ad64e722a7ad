// Causal flash attention for prefill with grouped-query heads, over a paged F16 KV cache.
// Paged layout (shared with the serving side): per layer, K and V pools [num_blocks][block][kv_dim] F16; a sequence's
// block table maps position p to pool block table[p / block], slot p % block (block = 16 for the contiguous cache).
// 128 threads (4 warps). A block takes a tile of up to 16 consecutive query rows of one sequence and one head; each
// warp 4 of them. The tile's row i is at position pos0 + i and sees positions 0 .. pos0 + i of its sequence.
// Two entry points share the body (fa_tile):
//   flash_attention_f16        one sequence (prefill over a contiguous cache with an identity table): grid
//                              (ceil(rows / 16), heads); query row r is at position start_pos + r; 16-position blocks.
//   flash_attention_f16_paged  a ragged batch: grid (tiles, heads); tile t = tiles[7t .. 7t+6] = (first row, rows
//                              (1..16), cache position of the first row, offset of its sequence's block table in
//                              tables, tree start, hidden start, hidden end); rows are at consecutive cache positions;
//                              blocks of 2^block_shift positions (any power of two: the tile's 16 positions may span
//                              several blocks, so each position is looked up on its own). The host cuts each
//                              sequence's rows into tiles, so a tile never mixes sequences (causality is per sequence),
//                              and checks every table entry is inside the pool.
// Draft trees (tree attention for speculative verification): a tile whose tree start t is not FA_CHAIN belongs to
// a sequence whose rows from cache position t on form a tree; its row r then sees the positions before t and, of
// the tree's positions t + j, only those whose bit j is set in its ancestor mask masks[4r .. 4r+3] (128 bits, low
// word first; itself and its ancestors). A masked key gets probability 0, as a key past the row's position does,
// so a chain is the case where every bit below the row's own is set.
// Hidden positions: a tile's positions [hidden start, hidden end) are masked for every row (a pruned prompt's rows
// that skipped this layer have no keys or values here); an empty range (0, 0) hides nothing.
// Layer variants (Gemma): a score is s = q.k * scale, then, with softcap > 0, softcap * tanh(s / softcap); with
// window > 0 a row sees only the last `window` positions of its chain: in a chain, the keys from its cache position
// - window + 1 on; in a tree, as plain decoding along its path once accepted would: of the prefix, the keys from
// tree start + depth - window + 1 on (depth: its ancestor bits less one), and of its ancestors those at most
// window - 1 steps up the path (its mask's bits from the key's up, at most window). Pages wholly before every row's
// window are not loaded.
// Query head h reads key/value head h / (heads / kv_heads). Keys and values go through shared memory one page (16 positions) at a time, and each row
// keeps an online softmax (running max m, sum l, unnormalized output o in registers), so the scores never leave the
// chip. As llama.cpp and the decode kernel, q is rounded to F16 before the dot product with the F16 keys.
// Dynamic shared memory: FA_BQ * head_dim floats (q) + 16 * (head_dim + 1) floats (K; +1 so that the 16 lanes
// reading 16 keys hit distinct banks) + 16 * head_dim halves (V). head_dim even, at most FA_MAXD.
#include "common.cuh"

#define FA_BQ 16      // query rows per block
#define FA_PAGE 16    // positions per K/V tile in shared memory (the contiguous cache's block size)
#define FA_MAXD 256   // largest head_dim: each lane keeps FA_MAXD / 32 output values per row
#define FA_ROWS 4     // query rows per warp (FA_BQ / 4 warps)
#define FA_CHAIN 0x7fffffff  // tree start of a chain tile: every earlier position is visible

__device__ __forceinline__ void fa_tile(
    const float* __restrict__ q, const __half* __restrict__ k_pool, const __half* __restrict__ v_pool,
    const int* __restrict__ table, float* __restrict__ out,
    int r0, int n, int pos0, int heads, int kv_heads, int head_dim, int block_shift, float scale,
    int tree_start, const unsigned* __restrict__ masks, int hidden_start, int hidden_end, float softcap, int window) {
    TS_DYNAMIC_SMEM(float, smem);
    const int hd = head_dim, kst = hd + 1;
    float* qs = smem;                                   // [FA_BQ][hd]
    float* ks = qs + FA_BQ * hd;                        // [FA_PAGE][hd + 1]
    __half* vs = (__half*)(ks + FA_PAGE * kst);         // [FA_PAGE][hd]
    const int tid = threadIdx.x, lane = tid & 31, warp = tid >> 5, h = blockIdx.y;
    const int kvh = h / (heads / kv_heads), kv_dim = kv_heads * hd;
    const int last_pos = pos0 + n - 1;                  // the furthest position any row of the tile sees
    const int block_mask = (1 << block_shift) - 1;

    for (int i = tid; i < FA_BQ * hd; i += blockDim.x) {
        const int r = i / hd, d = i - r * hd;
        qs[i] = r < n ? __half2float(__float2half_rn(q[((long)(r0 + r) * heads + h) * hd + d])) : 0.0f;
    }

    float m[FA_ROWS], l[FA_ROWS], o[FA_ROWS][FA_MAXD / 32];
#pragma unroll
    for (int rr = 0; rr < FA_ROWS; ++rr) {
        m[rr] = -INFINITY;
        l[rr] = 0.0f;
#pragma unroll
        for (int i = 0; i < FA_MAXD / 32; ++i) o[rr][i] = 0.0f;
    }
    const int key = lane & 15, half_sel = lane >> 4, hd2 = hd >> 1;

    // Each row's first visible position (its window's start; 0 without a window).
    int lo[FA_ROWS];
#pragma unroll
    for (int rr = 0; rr < FA_ROWS; ++rr) {
        const int qi = warp * FA_ROWS + rr, pos = pos0 + qi;
        int wpos = pos;
        if (window > 0 && qi < n && pos >= tree_start) {
            const unsigned* mr = masks + 4 * (r0 + qi);
            wpos = tree_start + __popc(mr[0]) + __popc(mr[1]) + __popc(mr[2]) + __popc(mr[3]) - 1;
        }
        lo[rr] = window > 0 ? max(0, wpos - window + 1) : 0;
        if (pos >= tree_start) lo[rr] = min(lo[rr], tree_start);  // the tree's own keys: by path steps, below
    }
    const int first_page = window > 0 ? max(0, min(pos0, tree_start) - window + 1) / FA_PAGE : 0;

    for (int page = first_page; page * FA_PAGE <= last_pos; ++page) {
        __syncthreads();  // the previous page's tiles (and, the first time, nothing) are no longer read
        for (int i = tid; i < FA_PAGE * hd; i += blockDim.x) {
            const int s = i / hd, d = i - s * hd, p = page * FA_PAGE + s;
            // Slots past the last position were never written (any bits, NaN included): zeros keep p * v finite.
            // Their block may not even be in the table, so it is looked up only for live positions. Hidden slots
            // were not written for this layer either: zeros too.
            const bool live = p <= last_pos && (p < hidden_start || p >= hidden_end);
            float kf = 0.0f;
            __half vh = __float2half(0.0f);
            if (live) {
                const long slot = ((long)table[p >> block_shift] << block_shift) | (p & block_mask);
                const long src = slot * kv_dim + kvh * hd + d;
                kf = __half2float(k_pool[src]);
                vh = v_pool[src];
            }
            ks[s * kst + d] = kf;
            vs[s * hd + d] = vh;
        }
        __syncthreads();

#pragma unroll
        for (int rr = 0; rr < FA_ROWS; ++rr) {
            const int qi = warp * FA_ROWS + rr;
            const int pos = pos0 + qi;
            if (qi >= n || page * FA_PAGE > pos) continue;  // warp-uniform: no key of this page is visible
            // Score of key (lane % 16): each half-warp sums half of the head dimension.
            const float* qr = qs + qi * hd + half_sel * hd2;
            const float* kr = ks + key * kst + half_sel * hd2;
            float s = 0.0f;
            for (int d = 0; d < hd2; ++d) s += qr[d] * kr[d];
            s += __shfl_xor_sync(0xffffffffu, s, 16);
            const int kp = page * FA_PAGE + key;
            bool visible = kp <= pos && kp >= lo[rr] && (kp < hidden_start || kp >= hidden_end);
            if (visible && kp >= tree_start) {
                const int j = kp - tree_start;  // < 128: a tree has at most 128 rows (the host checks)
                const unsigned* mr = masks + 4 * (r0 + qi);
                visible = (mr[j >> 5] >> (j & 31)) & 1u;
                if (visible && window > 0) {
                    int path = __popc(mr[j >> 5] >> (j & 31));  // path nodes from the key to the row
                    for (int w = (j >> 5) + 1; w < 4; ++w) path += __popc(mr[w]);
                    visible = path <= window;
                }
            }
            s = visible ? s * scale : -INFINITY;
            if (softcap > 0.0f && visible) s = tanhf(s * (1.0f / softcap)) * softcap;
            // The row's own key is always visible, so m is finite by the row's last page; until a page with a
            // visible key (a hidden range may cover page 0), m stays -inf and nothing is accumulated.
            const float m_new = fmaxf(m[rr], ts_warp_max(s));
            if (m_new == -INFINITY) continue;  // warp-uniform
            const float alpha = expf(m[rr] - m_new);  // 0 on the first page with a visible key (m = -inf)
            const float p = visible ? expf(s - m_new) : 0.0f;
            l[rr] = l[rr] * alpha + ts_warp_sum(lane < 16 ? p : 0.0f);
            m[rr] = m_new;
#pragma unroll
            for (int i = 0; i < FA_MAXD / 32; ++i) o[rr][i] *= alpha;
#pragma unroll
            for (int j = 0; j < FA_PAGE; ++j) {
                const float pj = __shfl_sync(0xffffffffu, p, j);
                const __half* vr = vs + j * hd;
#pragma unroll
                for (int i = 0; i < FA_MAXD / 32; ++i) {
                    const int d = lane + 32 * i;
                    if (d < hd) o[rr][i] += pj * __half2float(vr[d]);
                }
            }
        }
    }

#pragma unroll
    for (int rr = 0; rr < FA_ROWS; ++rr) {
        const int qi = warp * FA_ROWS + rr;
        if (qi >= n) continue;
        const float inv = 1.0f / l[rr];
        float* orow = out + ((long)(r0 + qi) * heads + h) * hd;
#pragma unroll
        for (int i = 0; i < FA_MAXD / 32; ++i) {
            const int d = lane + 32 * i;
            if (d < hd) orow[d] = o[rr][i] * inv;
        }
    }
}

extern "C" __global__ void __launch_bounds__(128) flash_attention_f16(
    const float* __restrict__ q, const __half* __restrict__ k_pool, const __half* __restrict__ v_pool,
    const int* __restrict__ block_table, float* __restrict__ out,
    int rows, int heads, int kv_heads, int head_dim, int start_pos, float scale) {
    const int r0 = blockIdx.x * FA_BQ;
    fa_tile(q, k_pool, v_pool, block_table, out, r0, min(FA_BQ, rows - r0), start_pos + r0,
            heads, kv_heads, head_dim, 4 /* 16-position blocks */, scale, FA_CHAIN, nullptr, 0, 0, 0.0f, 0);
}

extern "C" __global__ void __launch_bounds__(128) flash_attention_f16_paged(
    const float* __restrict__ q, const __half* __restrict__ k_pool, const __half* __restrict__ v_pool,
    const int* __restrict__ tiles, const int* __restrict__ tables, const unsigned* __restrict__ masks,
    float* __restrict__ out, int heads, int kv_heads, int head_dim, int block_shift, float scale, float softcap, int window) {
    const int* t = tiles + 7 * blockIdx.x;
    fa_tile(q, k_pool, v_pool, tables + t[3], out, t[0], t[1], t[2], heads, kv_heads, head_dim, block_shift, scale,
            t[4], masks, t[5], t[6], softcap, window);
}
