// Every kernel file compiled for the host with the emulator's device-language shim (cuda_emu.h, through
// common.cuh), and the table that binds each extern "C" entry point to its name. A .cu entry point missing here
// makes cuModuleLoadDataEx fail on that file's PTX, naming it, so the table cannot silently fall behind.
#define TESSERA_EMU 1
#include <cstring>
#include <type_traits>
#include <utility>

#include "../add.cu"
#include "../add_bias.cu"
#include "../argmax.cu"
#include "../attention_scores.cu"
#include "../attention_decode.cu"
#include "../embed.cu"
#include "../flash_attention.cu"
#include "../geglu.cu"
#include "../gemm.cu"
#include "../gemv.cu"
#include "../kv_append.cu"
#include "../kv_copy.cu"
#include "../rmsnorm.cu"
#include "../rope.cu"
#include "../sample_topk.cu"
#include "../scale.cu"
#include "../soft_cap.cu"
#include "../swiglu.cu"
#include "../topk_prune.cu"
#include "registry.h"

namespace emu {
namespace {

template <class... A, size_t... I>
void call(void* fn, void** p, std::index_sequence<I...>) {
    reinterpret_cast<void (*)(A...)>(fn)(*static_cast<std::remove_reference_t<A>*>(p[I])...);
}

template <class... A>
void invoke(void* fn, void** params) {
    call<A...>(fn, params, std::index_sequence_for<A...>{});
}

template <class... A>
KernelInfo info(const char* name, void (*fn)(A...)) {
    static_assert(sizeof...(A) <= kMaxParams, "raise kMaxParams");
    KernelInfo k{name, reinterpret_cast<void*>(fn), &invoke<A...>, (int)sizeof...(A), {sizeof(A)...}, {std::is_pointer_v<A>...}};
    return k;
}

#define EMU_KERNEL(f) info(#f, &f)

const KernelInfo kKernels[] = {
    EMU_KERNEL(add_f32),
    EMU_KERNEL(add_bias_f32),
    EMU_KERNEL(argmax_f32),
    EMU_KERNEL(topk_prune_f32),
    EMU_KERNEL(attention_scores_lse),
    EMU_KERNEL(attention_scores_heads),
    EMU_KERNEL(attention_scores_reduce),
    EMU_KERNEL(attention_decode_f16_partial),
    EMU_KERNEL(attention_decode_f16_combine),
    EMU_KERNEL(embed_f32),
    EMU_KERNEL(embed_f16),
    EMU_KERNEL(embed_bf16),
    EMU_KERNEL(embed_q8_0),
    EMU_KERNEL(flash_attention_f16),
    EMU_KERNEL(flash_attention_f16_paged),
    EMU_KERNEL(gemm_f16),
    EMU_KERNEL(gemm_bf16),
    EMU_KERNEL(gemm_q8_0),
    EMU_KERNEL(gemm_q4_0),
    EMU_KERNEL(gemm_q4_k),
    EMU_KERNEL(gemm_q6_k),
    EMU_KERNEL(gemv_f32),
    EMU_KERNEL(gemv_f16),
    EMU_KERNEL(gemv_bf16),
    EMU_KERNEL(gemv_q8_0),
    EMU_KERNEL(gemv_q4_0),
    EMU_KERNEL(gemv_q4_k),
    EMU_KERNEL(gemv_q6_k),
    EMU_KERNEL(kv_append_f16),
    EMU_KERNEL(kv_append_f16_paged),
    EMU_KERNEL(kv_copy_f16),
    EMU_KERNEL(rmsnorm_f32),
    EMU_KERNEL(rope_f32_adjacent),
    EMU_KERNEL(rope_f32_half),
    EMU_KERNEL(sample_topk_f32),
    EMU_KERNEL(sample_topk_f32_rows),
    EMU_KERNEL(swiglu_f32),
    EMU_KERNEL(geglu_f32),
    EMU_KERNEL(soft_cap_f32),
    EMU_KERNEL(scale_f32),
};

}  // namespace

const KernelInfo* find_kernel(const char* name) {
    for (const KernelInfo& k : kKernels)
        if (std::strcmp(k.name, name) == 0) return &k;
    return nullptr;
}

}  // namespace emu
