// The CUDA driver API subset Tessera binds (interop/Driver/CuNative.cs), implemented on the host so that the C#
// CUDA backend runs unchanged on a machine without a GPU: TESSERA_LIBCUDA=<this library> makes interop load it in
// place of libcuda. "Device" memory is host memory; modules are the PTX Tessera embeds (the emulator reads its entry
// points and .maxntid from it) bound to the same kernels compiled for the host (kernels.cpp); launches run on the
// fiber scheduler (fiber.h) when issued, and a captured stream becomes a list of nodes replayed by cuGraphLaunch.
// What it checks that a GPU would not report as clearly: launch shapes against the device's and the kernel's limits,
// dynamic shared memory against the opt-in, every pointer argument and copy against the live allocations, and warp
// collectives (fiber.h). New allocations and shared memory are filled with NaN bytes, as a GPU's may hold anything.
#include <algorithm>
#include <chrono>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <map>
#include <memory>
#include <mutex>
#include <string>
#include <vector>

#include "fiber.h"
#include "registry.h"

#define EMU_API extern "C" __attribute__((visibility("default")))

namespace {

enum : int {
    kSuccess = 0, kInvalidValue = 1, kOutOfMemory = 2, kNotInitialized = 3, kInvalidDevice = 101,
    kInvalidImage = 200, kInvalidContext = 201, kInvalidPtx = 218, kInvalidHandle = 400, kIllegalState = 401,
    kNotFound = 500, kLaunchOutOfResources = 701, kLaunchFailed = 719, kNotSupported = 801,
    kCaptureUnsupported = 900, kCaptureInvalidated = 901, kUnknown = 999,
};

constexpr int kDefaultDynamicSmem = 48 * 1024;
constexpr int kMaxSmemOptin = 227 * 1024;  // an H100's, so launchers are held to a real limit
constexpr int kSmCount = 8;

struct Function {
    const emu::KernelInfo* kernel;
    std::string name;
    int max_threads = 1024;  // .maxntid from the PTX, else the device limit
    int max_dynamic_smem = kDefaultDynamicSmem;
};

struct Module {
    std::vector<std::unique_ptr<Function>> functions;
};

// A launch or copy, as issued or as captured into a graph (with its arguments copied at capture, as the driver does).
struct Node {
    enum Kind { Launch, Copy, Memset, EventRecord } kind;
    Function* fn = nullptr;
    emu::dim3 grid, block;
    size_t smem = 0;
    std::vector<unsigned char> args;  // each parameter at an 8- or 16-byte aligned offset
    std::vector<size_t> offsets;
    void* dst = nullptr;
    const void* src = nullptr;
    size_t bytes = 0;
    unsigned char value = 0;
    struct Event* event = nullptr;
};

struct Event {
    std::chrono::steady_clock::time_point at{};
    bool recorded = false;
};

struct Stream {
    bool capturing = false;
    bool invalidated = false;
    std::vector<Node> captured;
};

struct Graph {
    std::vector<Node> nodes;
};

std::recursive_mutex g_lock;
bool g_initialized = false;
std::map<uintptr_t, size_t> g_device;  // start -> bytes
std::map<uintptr_t, size_t> g_pinned;
Stream g_null_stream;
std::string g_detail;  // why the last call failed, appended to cuGetErrorString's text
int g_detail_code = 0;
int g_context_token = 1;

int fail(int code, std::string detail) {
    g_detail = std::move(detail);
    g_detail_code = code;
    if (std::getenv("TESSERA_EMU_VERBOSE")) std::fprintf(stderr, "tessera-cuda-emu: %s\n", g_detail.c_str());
    return code;
}

Stream* stream_of(void* handle) { return handle ? static_cast<Stream*>(handle) : &g_null_stream; }

// The allocation holding [p, p + bytes), or null.
const std::pair<const uintptr_t, size_t>* find_range(const std::map<uintptr_t, size_t>& m, uintptr_t p, size_t bytes) {
    auto it = m.upper_bound(p);
    if (it == m.begin()) return nullptr;
    --it;
    if (p < it->first || p + bytes > it->first + it->second) return nullptr;
    return &*it;
}

bool is_device(uintptr_t p, size_t bytes) { return find_range(g_device, p, bytes) != nullptr; }
bool is_pinned(uintptr_t p, size_t bytes) { return find_range(g_pinned, p, bytes) != nullptr; }

std::string hex(uintptr_t p) {
    char buf[32];
    std::snprintf(buf, sizeof buf, "0x%llx", (unsigned long long)p);
    return buf;
}

int run_node(Node& n) {
    switch (n.kind) {
        case Node::Copy: std::memmove(n.dst, n.src, n.bytes); return kSuccess;
        case Node::Memset: std::memset(n.dst, n.value, n.bytes); return kSuccess;
        case Node::EventRecord:
            n.event->at = std::chrono::steady_clock::now();
            n.event->recorded = true;
            return kSuccess;
        case Node::Launch: {
            std::vector<void*> params(n.offsets.size());
            for (size_t i = 0; i < params.size(); ++i) params[i] = n.args.data() + n.offsets[i];
            emu::GridLaunch launch;
            launch.grid = n.grid;
            launch.block = n.block;
            launch.dynamic_smem = n.smem;
            launch.invoke = n.fn->kernel->invoke;
            launch.fn = n.fn->kernel->fn;
            launch.params = params.data();
            launch.name = n.fn->kernel->name;
            std::string error;
            if (!emu::run_grid(launch, error)) return fail(kLaunchFailed, error);
            return kSuccess;
        }
    }
    return kUnknown;
}

// Issues a node on a stream: recorded while the stream captures, else run now (every stream is synchronous).
int issue(void* stream, Node&& n) {
    Stream* s = stream_of(stream);
    if (s->capturing) {
        s->captured.push_back(std::move(n));
        return kSuccess;
    }
    return run_node(n);
}

int copy(void* dst, const void* src, size_t bytes, void* stream, bool dst_device, bool src_device, const char* what) {
    const uintptr_t d = (uintptr_t)dst, s = (uintptr_t)src;
    if (dst_device && !is_device(d, bytes))
        return fail(kInvalidValue, std::string(what) + ": destination " + hex(d) + " + " + std::to_string(bytes) +
                                       " bytes is not inside one device allocation");
    if (src_device && !is_device(s, bytes))
        return fail(kInvalidValue, std::string(what) + ": source " + hex(s) + " + " + std::to_string(bytes) +
                                       " bytes is not inside one device allocation");
    if ((!dst_device && !dst) || (!src_device && !src)) return fail(kInvalidValue, std::string(what) + ": null host pointer");
    Node n{Node::Copy};
    n.dst = dst;
    n.src = src;
    n.bytes = bytes;
    return issue(stream, std::move(n));
}

// Entry points and their .maxntid in a PTX module's text.
std::vector<std::pair<std::string, int>> ptx_entries(const char* ptx) {
    std::vector<std::pair<std::string, int>> out;
    const char* p = ptx;
    while ((p = std::strstr(p, ".entry ")) != nullptr) {
        p += 7;
        const char* end = p;
        while (*end && *end != '(' && *end != ' ' && *end != '\n') ++end;
        std::string name(p, end);
        int maxntid = 1024;
        const char* body = std::strchr(end, '{');
        const char* mx = std::strstr(end, ".maxntid");
        if (mx && (!body || mx < body)) {
            int x = 1, y = 1, z = 1;
            if (std::sscanf(mx + 8, " %d , %d , %d", &x, &y, &z) >= 1) maxntid = x * y * z;
        }
        out.emplace_back(std::move(name), maxntid);
        p = end;
    }
    return out;
}

void write_log(unsigned n, const int* options, void** values, const std::string& text) {
    char* buf = nullptr;
    size_t size = 0;
    for (unsigned i = 0; i < n; ++i) {
        if (options[i] == 5) buf = (char*)values[i];                  // CU_JIT_ERROR_LOG_BUFFER
        if (options[i] == 6) size = (size_t)(uintptr_t)values[i];     // CU_JIT_ERROR_LOG_BUFFER_SIZE_BYTES
    }
    if (!buf || size == 0) return;
    std::snprintf(buf, size, "%s", text.c_str());
}

}  // namespace

EMU_API int cuInit(unsigned flags) {
    std::lock_guard<std::recursive_mutex> g(g_lock);
    if (flags != 0) return fail(kInvalidValue, "cuInit: flags must be 0");
    g_initialized = true;
    return kSuccess;
}

#define EMU_REQUIRE_INIT() \
    if (!g_initialized) return fail(kNotInitialized, "cuInit was not called")

EMU_API int cuDriverGetVersion(int* version) {
    if (!version) return kInvalidValue;
    *version = 12040;
    return kSuccess;
}

EMU_API int cuDeviceGetCount(int* count) {
    std::lock_guard<std::recursive_mutex> g(g_lock);
    EMU_REQUIRE_INIT();
    *count = 1;
    return kSuccess;
}

EMU_API int cuDeviceGet(int* device, int ordinal) {
    std::lock_guard<std::recursive_mutex> g(g_lock);
    EMU_REQUIRE_INIT();
    if (ordinal != 0) return fail(kInvalidDevice, "the emulator has one device (ordinal 0)");
    *device = 0;
    return kSuccess;
}

EMU_API int cuDeviceGetName(char* name, int len, int device) {
    if (device != 0) return kInvalidDevice;
    if (!name || len <= 0) return kInvalidValue;
    std::snprintf(name, (size_t)len, "%s", emu::kDeviceName);
    return kSuccess;
}

EMU_API int cuDeviceGetAttribute(int* value, int attribute, int device) {
    if (device != 0) return kInvalidDevice;
    switch (attribute) {
        case 1: *value = 1024; return kSuccess;               // MAX_THREADS_PER_BLOCK
        case 8: *value = kDefaultDynamicSmem; return kSuccess;  // MAX_SHARED_MEMORY_PER_BLOCK
        case 10: *value = 32; return kSuccess;                // WARP_SIZE
        case 16: *value = kSmCount; return kSuccess;          // MULTIPROCESSOR_COUNT
        case 36: *value = 2619000; return kSuccess;           // MEMORY_CLOCK_RATE (kHz, an H100's)
        case 37: *value = 5120; return kSuccess;              // GLOBAL_MEMORY_BUS_WIDTH
        case 38: *value = 50 * 1024 * 1024; return kSuccess;  // L2_CACHE_SIZE
        case 75: *value = 9; return kSuccess;                 // COMPUTE_CAPABILITY_MAJOR: the sm_90 PTX is loaded
        case 76: *value = 0; return kSuccess;
        case 97: *value = kMaxSmemOptin; return kSuccess;     // MAX_SHARED_MEMORY_PER_BLOCK_OPTIN
        default: return fail(kInvalidValue, "cuDeviceGetAttribute: attribute " + std::to_string(attribute) + " is not emulated");
    }
}

EMU_API int cuDeviceTotalMem_v2(size_t* bytes, int device) {
    if (device != 0) return kInvalidDevice;
    *bytes = (size_t)16 << 30;
    return kSuccess;
}

EMU_API int cuDevicePrimaryCtxRetain(void** context, int device) {
    std::lock_guard<std::recursive_mutex> g(g_lock);
    EMU_REQUIRE_INIT();
    if (device != 0) return kInvalidDevice;
    *context = &g_context_token;
    return kSuccess;
}

EMU_API int cuDevicePrimaryCtxRelease_v2(int device) { return device == 0 ? kSuccess : kInvalidDevice; }

EMU_API int cuCtxSetCurrent(void* context) {
    if (context && context != &g_context_token) return fail(kInvalidContext, "cuCtxSetCurrent: not the emulator's context");
    return kSuccess;
}

EMU_API int cuModuleLoadDataEx(void** module, const void* image, unsigned n, int* options, void** values) {
    std::lock_guard<std::recursive_mutex> g(g_lock);
    EMU_REQUIRE_INIT();
    const char* ptx = (const char*)image;
    if (!ptx || !std::strstr(ptx, ".version") || !std::strstr(ptx, ".target")) {
        std::string log = "tessera-cuda-emu: the image is not PTX text (no .version/.target directive)";
        write_log(n, options, values, log);
        return fail(kInvalidPtx, log);
    }
    auto m = std::make_unique<Module>();
    for (auto& [name, maxntid] : ptx_entries(ptx)) {
        const emu::KernelInfo* k = emu::find_kernel(name.c_str());
        if (!k) {
            std::string log = "tessera-cuda-emu: entry point " + name + " has no host build in the emulator (kernels.cpp)";
            write_log(n, options, values, log);
            return fail(kInvalidPtx, log);
        }
        auto f = std::make_unique<Function>();
        f->kernel = k;
        f->name = name;
        f->max_threads = maxntid;
        m->functions.push_back(std::move(f));
    }
    *module = m.release();
    return kSuccess;
}

EMU_API int cuModuleUnload(void* module) {
    std::lock_guard<std::recursive_mutex> g(g_lock);
    delete static_cast<Module*>(module);
    return kSuccess;
}

EMU_API int cuModuleGetFunction(void** function, void* module, const char* name) {
    std::lock_guard<std::recursive_mutex> g(g_lock);
    if (!module) return kInvalidHandle;
    for (auto& f : static_cast<Module*>(module)->functions)
        if (f->name == name) {
            *function = f.get();
            return kSuccess;
        }
    return fail(kNotFound, std::string("cuModuleGetFunction: no entry point ") + name + " in the module's PTX");
}

EMU_API int cuFuncGetAttribute(int* value, int attribute, void* function) {
    auto* f = static_cast<Function*>(function);
    if (!f) return kInvalidHandle;
    switch (attribute) {
        case 0: *value = f->max_threads; return kSuccess;       // MAX_THREADS_PER_BLOCK
        case 8: *value = f->max_dynamic_smem; return kSuccess;  // MAX_DYNAMIC_SHARED_SIZE_BYTES
        default:  // registers, local memory and the like belong to a real compiler and GPU
            return fail(kNotSupported, "cuFuncGetAttribute: attribute " + std::to_string(attribute) +
                                           " (registers, local memory, ...) has no meaning in the emulator");
    }
}

EMU_API int cuFuncSetAttribute(void* function, int attribute, int value) {
    auto* f = static_cast<Function*>(function);
    if (!f) return kInvalidHandle;
    if (attribute != 8) return fail(kNotSupported, "cuFuncSetAttribute: only MAX_DYNAMIC_SHARED_SIZE_BYTES is emulated");
    if (value < 0 || value > kMaxSmemOptin)
        return fail(kInvalidValue, "cuFuncSetAttribute: " + std::to_string(value) + " bytes of dynamic shared memory is above the device's opt-in limit");
    f->max_dynamic_smem = value;
    return kSuccess;
}

EMU_API int cuLaunchKernel(void* function, unsigned gx, unsigned gy, unsigned gz, unsigned bx, unsigned by, unsigned bz,
                           unsigned smem, void* stream, void** params, void** extra) {
    std::lock_guard<std::recursive_mutex> g(g_lock);
    auto* f = static_cast<Function*>(function);
    if (!f) return kInvalidHandle;
    const std::string who = "cuLaunchKernel(" + f->name + ")";
    if (extra) return fail(kNotSupported, who + ": the extra argument is not emulated");
    if (gx == 0 || gy == 0 || gz == 0 || gy > 65535 || gz > 65535 || gx > 0x7fffffffu)
        return fail(kInvalidValue, who + ": grid (" + std::to_string(gx) + "," + std::to_string(gy) + "," + std::to_string(gz) + ") is out of range");
    const unsigned long threads = (unsigned long)bx * by * bz;
    if (bx == 0 || by == 0 || bz == 0 || bx > 1024 || by > 1024 || bz > 64 || threads > 1024)
        return fail(kInvalidValue, who + ": block (" + std::to_string(bx) + "," + std::to_string(by) + "," + std::to_string(bz) + ") is out of range");
    if (threads > (unsigned long)f->max_threads)
        return fail(kLaunchOutOfResources, who + ": " + std::to_string(threads) + " threads per block, above the kernel's .maxntid " + std::to_string(f->max_threads));
    if ((int)smem > f->max_dynamic_smem)
        return fail(kInvalidValue, who + ": " + std::to_string(smem) + " bytes of dynamic shared memory, above the kernel's limit of " +
                                       std::to_string(f->max_dynamic_smem) + " (cuFuncSetAttribute raises it)");
    const emu::KernelInfo& k = *f->kernel;
    if (k.param_count > 0 && !params) return fail(kInvalidValue, who + ": kernelParams is null");
    Node n{Node::Launch};
    n.fn = f;
    n.grid = emu::dim3{gx, gy, gz};
    n.block = emu::dim3{bx, by, bz};
    n.smem = smem;
    size_t off = 0;
    for (int i = 0; i < k.param_count; ++i) {
        off = (off + 15) & ~(size_t)15;
        n.offsets.push_back(off);
        off += k.param_sizes[i];
    }
    n.args.resize(off + 16);
    for (int i = 0; i < k.param_count; ++i) {
        if (!params[i]) return fail(kInvalidValue, who + ": kernelParams[" + std::to_string(i) + "] is null");
        std::memcpy(n.args.data() + n.offsets[(size_t)i], params[i], k.param_sizes[i]);
        if (k.param_is_pointer[i]) {
            uintptr_t p;
            std::memcpy(&p, params[i], sizeof p);
            // A pointer argument must be null or point into (or just past) live device or pinned memory.
            if (p && !is_device(p, 0) && !is_pinned(p, 0))
                return fail(kInvalidValue, who + ": argument " + std::to_string(i) + " (" + hex(p) + ") is not device memory");
        }
    }
    return issue(stream, std::move(n));
}

EMU_API int cuMemAlloc_v2(uint64_t* dptr, size_t bytes) {
    std::lock_guard<std::recursive_mutex> g(g_lock);
    EMU_REQUIRE_INIT();
    if (bytes == 0) return fail(kInvalidValue, "cuMemAlloc: 0 bytes");
    void* p = std::aligned_alloc(256, (bytes + 255) & ~(size_t)255);
    if (!p) return fail(kOutOfMemory, "cuMemAlloc: " + std::to_string(bytes) + " bytes");
    std::memset(p, 0xff, bytes);  // NaN in every float type: a read before the first write shows
    g_device[(uintptr_t)p] = bytes;
    *dptr = (uint64_t)(uintptr_t)p;
    return kSuccess;
}

EMU_API int cuMemFree_v2(uint64_t dptr) {
    std::lock_guard<std::recursive_mutex> g(g_lock);
    auto it = g_device.find((uintptr_t)dptr);
    if (it == g_device.end()) return fail(kInvalidValue, "cuMemFree: " + hex((uintptr_t)dptr) + " is not an allocation");
    std::free((void*)it->first);
    g_device.erase(it);
    return kSuccess;
}

EMU_API int cuMemAllocHost_v2(void** pointer, size_t bytes) {
    std::lock_guard<std::recursive_mutex> g(g_lock);
    EMU_REQUIRE_INIT();
    void* p = std::aligned_alloc(4096, (std::max<size_t>(bytes, 1) + 4095) & ~(size_t)4095);
    if (!p) return fail(kOutOfMemory, "cuMemAllocHost: " + std::to_string(bytes) + " bytes");
    g_pinned[(uintptr_t)p] = bytes;
    *pointer = p;
    return kSuccess;
}

EMU_API int cuMemFreeHost(void* pointer) {
    std::lock_guard<std::recursive_mutex> g(g_lock);
    auto it = g_pinned.find((uintptr_t)pointer);
    if (it == g_pinned.end()) return fail(kInvalidValue, "cuMemFreeHost: not a pinned allocation");
    std::free(pointer);
    g_pinned.erase(it);
    return kSuccess;
}

EMU_API int cuMemcpyHtoDAsync_v2(uint64_t dst, const void* src, size_t bytes, void* stream) {
    std::lock_guard<std::recursive_mutex> g(g_lock);
    return copy((void*)(uintptr_t)dst, src, bytes, stream, true, false, "cuMemcpyHtoDAsync");
}

EMU_API int cuMemcpyDtoHAsync_v2(void* dst, uint64_t src, size_t bytes, void* stream) {
    std::lock_guard<std::recursive_mutex> g(g_lock);
    return copy(dst, (const void*)(uintptr_t)src, bytes, stream, false, true, "cuMemcpyDtoHAsync");
}

EMU_API int cuMemcpyDtoDAsync_v2(uint64_t dst, uint64_t src, size_t bytes, void* stream) {
    std::lock_guard<std::recursive_mutex> g(g_lock);
    return copy((void*)(uintptr_t)dst, (const void*)(uintptr_t)src, bytes, stream, true, true, "cuMemcpyDtoDAsync");
}

EMU_API int cuMemsetD8Async(uint64_t dst, unsigned char value, size_t count, void* stream) {
    std::lock_guard<std::recursive_mutex> g(g_lock);
    if (!is_device((uintptr_t)dst, count))
        return fail(kInvalidValue, "cuMemsetD8Async: " + hex((uintptr_t)dst) + " + " + std::to_string(count) + " bytes is not inside one device allocation");
    Node n{Node::Memset};
    n.dst = (void*)(uintptr_t)dst;
    n.bytes = count;
    n.value = value;
    return issue(stream, std::move(n));
}

EMU_API int cuStreamCreate(void** stream, unsigned flags) {
    (void)flags;
    *stream = new Stream();
    return kSuccess;
}

EMU_API int cuStreamDestroy_v2(void* stream) {
    std::lock_guard<std::recursive_mutex> g(g_lock);
    delete static_cast<Stream*>(stream);
    return kSuccess;
}

EMU_API int cuStreamSynchronize(void* stream) {
    std::lock_guard<std::recursive_mutex> g(g_lock);
    Stream* s = stream_of(stream);
    if (s->capturing) {
        s->invalidated = true;  // as on a GPU: synchronizing a capturing stream ends the capture's usefulness
        return fail(kCaptureUnsupported, "cuStreamSynchronize on a stream that is being captured");
    }
    return kSuccess;
}

EMU_API int cuEventCreate(void** evt, unsigned flags) {
    (void)flags;
    *evt = new Event();
    return kSuccess;
}

EMU_API int cuEventRecord(void* evt, void* stream) {
    std::lock_guard<std::recursive_mutex> g(g_lock);
    if (!evt) return kInvalidHandle;
    Node n{Node::EventRecord};
    n.event = static_cast<Event*>(evt);
    return issue(stream, std::move(n));
}

EMU_API int cuEventSynchronize(void* evt) { return evt ? kSuccess : kInvalidHandle; }

EMU_API int cuEventElapsedTime(float* ms, void* start, void* end) {
    auto* a = static_cast<Event*>(start);
    auto* b = static_cast<Event*>(end);
    if (!a || !b) return kInvalidHandle;
    if (!a->recorded || !b->recorded) return fail(kInvalidValue, "cuEventElapsedTime: an event was never recorded");
    *ms = std::chrono::duration<float, std::milli>(b->at - a->at).count();
    return kSuccess;
}

EMU_API int cuEventDestroy_v2(void* evt) {
    delete static_cast<Event*>(evt);
    return kSuccess;
}

EMU_API int cuStreamBeginCapture_v2(void* stream, int mode) {
    std::lock_guard<std::recursive_mutex> g(g_lock);
    (void)mode;
    Stream* s = stream_of(stream);
    if (!stream) return fail(kCaptureUnsupported, "cuStreamBeginCapture: the legacy null stream cannot be captured");
    if (s->capturing) return fail(kIllegalState, "cuStreamBeginCapture: the stream is already capturing");
    s->capturing = true;
    s->invalidated = false;
    s->captured.clear();
    return kSuccess;
}

EMU_API int cuStreamEndCapture(void* stream, void** graph) {
    std::lock_guard<std::recursive_mutex> g(g_lock);
    Stream* s = stream_of(stream);
    if (!s->capturing) return fail(kIllegalState, "cuStreamEndCapture: the stream is not capturing");
    s->capturing = false;
    if (s->invalidated) {
        s->captured.clear();
        *graph = nullptr;
        return fail(kCaptureInvalidated, "cuStreamEndCapture: the capture was invalidated by an earlier error");
    }
    auto* gr = new Graph();
    gr->nodes = std::move(s->captured);
    s->captured.clear();
    *graph = gr;
    return kSuccess;
}

EMU_API int cuGraphInstantiateWithFlags(void** exec, void* graph, unsigned long long flags) {
    (void)flags;
    if (!graph) return kInvalidHandle;
    *exec = new Graph(*static_cast<Graph*>(graph));
    return kSuccess;
}

EMU_API int cuGraphLaunch(void* exec, void* stream) {
    std::lock_guard<std::recursive_mutex> g(g_lock);
    if (!exec) return kInvalidHandle;
    if (stream_of(stream)->capturing) return fail(kCaptureUnsupported, "cuGraphLaunch into a capturing stream is not emulated");
    for (Node& n : static_cast<Graph*>(exec)->nodes) {
        const int r = run_node(n);
        if (r != kSuccess) return r;
    }
    return kSuccess;
}

EMU_API int cuGraphExecDestroy(void* exec) {
    delete static_cast<Graph*>(exec);
    return kSuccess;
}

EMU_API int cuGraphDestroy(void* graph) {
    delete static_cast<Graph*>(graph);
    return kSuccess;
}

namespace {
struct ErrorText {
    int code;
    const char* name;
    const char* text;
};
const ErrorText kErrors[] = {
    {kSuccess, "CUDA_SUCCESS", "no errors"},
    {kInvalidValue, "CUDA_ERROR_INVALID_VALUE", "invalid argument"},
    {kOutOfMemory, "CUDA_ERROR_OUT_OF_MEMORY", "out of memory"},
    {kNotInitialized, "CUDA_ERROR_NOT_INITIALIZED", "initialization error"},
    {kInvalidDevice, "CUDA_ERROR_INVALID_DEVICE", "invalid device ordinal"},
    {kInvalidImage, "CUDA_ERROR_INVALID_IMAGE", "device kernel image is invalid"},
    {kInvalidContext, "CUDA_ERROR_INVALID_CONTEXT", "invalid device context"},
    {kInvalidPtx, "CUDA_ERROR_INVALID_PTX", "a PTX JIT compilation failed"},
    {kInvalidHandle, "CUDA_ERROR_INVALID_HANDLE", "invalid resource handle"},
    {kIllegalState, "CUDA_ERROR_ILLEGAL_STATE", "the operation cannot be performed in the present state"},
    {kNotFound, "CUDA_ERROR_NOT_FOUND", "named symbol not found"},
    {kLaunchOutOfResources, "CUDA_ERROR_LAUNCH_OUT_OF_RESOURCES", "too many resources requested for launch"},
    {kLaunchFailed, "CUDA_ERROR_LAUNCH_FAILED", "unspecified launch failure"},
    {kNotSupported, "CUDA_ERROR_NOT_SUPPORTED", "operation not supported"},
    {kCaptureUnsupported, "CUDA_ERROR_STREAM_CAPTURE_UNSUPPORTED", "operation not permitted when stream is capturing"},
    {kCaptureInvalidated, "CUDA_ERROR_STREAM_CAPTURE_INVALIDATED", "operation failed due to a previous error during capture"},
    {kUnknown, "CUDA_ERROR_UNKNOWN", "unknown error"},
};
thread_local std::string t_text;
}  // namespace

EMU_API int cuGetErrorName(int error, const char** name) {
    for (const auto& e : kErrors)
        if (e.code == error) { *name = e.name; return kSuccess; }
    return kInvalidValue;
}

// The driver's text for the code, followed by the emulator's own account of the last failure with that code.
EMU_API int cuGetErrorString(int error, const char** text) {
    std::lock_guard<std::recursive_mutex> g(g_lock);
    for (const auto& e : kErrors)
        if (e.code == error) {
            t_text = e.text;
            if (error == g_detail_code && !g_detail.empty()) t_text += " [emulator: " + g_detail + "]";
            *text = t_text.c_str();
            return kSuccess;
        }
    return kInvalidValue;
}
