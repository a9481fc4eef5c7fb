// oneDNN 2-D convolutions as XLA FFI custom calls: the three first-order ops of jaxgan's
// convolution family (jaxgan/models/fast_conv.py), float32, NHWC activations, HWIO kernels.
// The design is described in docs/cpu_backend.md.
//
//   JaxganConvForward        (x, k)  -> y    lax.conv_general_dilated
//   JaxganConvInputGradient  (dy, k) -> dx   its transpose in x
//   JaxganConvKernelGradient (x, dy) -> dk   its transpose in k
//   JaxganConvKernelGradientAsForward        JaxganConvForward under its own name, for the
//                                            kernel gradients computed as forward convolutions
//                                            (_ops.py), so that profiles can tell them apart
//
// Attributes: strides (sh, sw), kernel dilation (dh, dw) and explicit padding (top, bottom, left,
// right), as lax's.
// Every shape comes from the buffers. Built on first use by _library.py, beside this file.

#include <algorithm>
#include <atomic>
#include <condition_variable>
#include <cstdint>
#include <cstring>
#include <exception>
#include <functional>
#include <map>
#include <memory>
#include <mutex>
#include <stdexcept>
#include <string>
#include <tuple>
#include <unordered_map>
#include <vector>

#include <omp.h>

#include "oneapi/dnnl/dnnl.hpp"
#include "xla/ffi/api/ffi.h"

namespace ffi = xla::ffi;
using dnnl::memory;
using Tag = dnnl::memory::format_tag;

namespace {

enum class Op { kForward, kInputGradient, kKernelGradient };

dnnl::engine& Engine() {
  static dnnl::engine engine(dnnl::engine::kind::cpu, 0);
  return engine;
}

// oneDNN names dimensions logically (N, C, H, W and O, I, H, W) whatever the layout in memory.
memory::dims Nchw(ffi::Span<const int64_t> nhwc) { return {nhwc[0], nhwc[3], nhwc[1], nhwc[2]}; }
memory::dims Oihw(ffi::Span<const int64_t> hwio) { return {hwio[3], hwio[2], hwio[0], hwio[1]}; }

// One convolution's geometry: the cache key, and everything a primitive descriptor needs.
struct Geometry {
  memory::dims src, weights, dst, strides, dilates, pad_l, pad_r;
  bool operator<(const Geometry& o) const {
    return std::tie(src, weights, dst, strides, dilates, pad_l, pad_r) <
           std::tie(o.src, o.weights, o.dst, o.strides, o.dilates, o.pad_l, o.pad_r);
  }
};

// A compiled primitive, plus the kernel layout it wants (oneDNN picks a blocked weight layout
// for speed; HWIO kernels are reordered into it and gradients out of it).
struct Compiled {
  dnnl::primitive primitive;
  memory::desc weights;  // the primitive's weights (or diff weights) layout
  memory::desc scratchpad;
};

memory::desc F32(const memory::dims& dims, Tag tag) {
  return memory::desc(dims, memory::data_type::f32, tag);
}

dnnl::primitive_attr Attributes() {
  dnnl::primitive_attr attr;
  // Scratch memory is allocated per call, so the cached primitives hold none between calls.
  attr.set_scratchpad_mode(dnnl::scratchpad_mode::user);
  return attr;
}

dnnl::convolution_forward::primitive_desc ForwardDesc(const Geometry& g) {
  return dnnl::convolution_forward::primitive_desc(
      Engine(), dnnl::prop_kind::forward_training, dnnl::algorithm::convolution_direct,
      F32(g.src, Tag::nhwc), F32(g.weights, Tag::any), F32(g.dst, Tag::nhwc), g.strides, g.dilates,
      g.pad_l, g.pad_r, Attributes());
}

Compiled Compile(Op op, const Geometry& g) {
  memory::desc src = F32(g.src, Tag::nhwc), dst = F32(g.dst, Tag::nhwc);
  memory::desc any_weights = F32(g.weights, Tag::any);
  auto forward = ForwardDesc(g);
  switch (op) {
    case Op::kForward:
      return {dnnl::convolution_forward(forward), forward.weights_desc(),
              forward.scratchpad_desc()};
    case Op::kInputGradient: {
      dnnl::convolution_backward_data::primitive_desc pd(
          Engine(), dnnl::algorithm::convolution_direct, src, any_weights, dst, g.strides,
          g.dilates, g.pad_l, g.pad_r, forward, Attributes());
      return {dnnl::convolution_backward_data(pd), pd.weights_desc(), pd.scratchpad_desc()};
    }
    case Op::kKernelGradient: {
      dnnl::convolution_backward_weights::primitive_desc pd(
          Engine(), dnnl::algorithm::convolution_direct, src, any_weights, dst, g.strides,
          g.dilates, g.pad_l, g.pad_r, forward, Attributes());
      return {dnnl::convolution_backward_weights(pd), pd.diff_weights_desc(),
              pd.scratchpad_desc()};
    }
  }
  throw std::logic_error("unknown op");
}

const Compiled& Lookup(Op op, const Geometry& g) {
  static std::mutex mutex;
  static std::map<std::pair<int, Geometry>, std::unique_ptr<Compiled>> cache;
  std::lock_guard<std::mutex> lock(mutex);
  auto& entry = cache[{static_cast<int>(op), g}];
  if (!entry) entry = std::make_unique<Compiled>(Compile(op, g));
  return *entry;
}

Geometry MakeGeometry(ffi::Span<const int64_t> x, ffi::Span<const int64_t> k,
                      ffi::Span<const int64_t> y, ffi::Span<const int64_t> strides,
                      ffi::Span<const int64_t> dilation, ffi::Span<const int64_t> padding) {
  // lax's kernel dilation d spaces taps d apart; oneDNN counts the d - 1 gaps.
  return {Nchw(x), Oihw(k), Nchw(y), {strides[0], strides[1]}, {dilation[0] - 1, dilation[1] - 1},
          {padding[0], padding[2]}, {padding[1], padding[3]}};
}

// oneDNN on one thread, in whatever thread runs a slice. The batch slices are the parallelism,
// run by XLA's own thread pool beside its other work: an OpenMP team per convolution would compete
// with that work, and with concurrent convolutions, for the cores.
class OneThread {
 public:
  OneThread() : saved_(omp_get_max_threads()) { omp_set_num_threads(1); }
  ~OneThread() { omp_set_num_threads(saved_); }

 private:
  int saved_;
};

// Runs fn(0), ..., fn(n-1), each once, on the calling thread and n-1 tasks of XLA's thread pool.
// The caller takes indices too and waits only for those already taken, so it finishes whether or
// not the pool ever starts the tasks (a pool busy with other thunks cannot deadlock it).
void ParallelFor(ffi::ThreadPool& pool, int n, const std::function<void(int)>& fn) {
  struct State {
    State(int n, const std::function<void(int)>* fn) : n(n), pending(n), fn(fn) {}
    const int n;
    std::atomic<int> next{0};
    int pending;  // under mutex
    std::mutex mutex;
    std::condition_variable done;
    const std::function<void(int)>* fn;  // called only for indices below n, before done
    std::exception_ptr error;
  };
  auto state = std::make_shared<State>(n, &fn);
  auto work = [](State& s) {
    for (int i = s.next.fetch_add(1); i < s.n; i = s.next.fetch_add(1)) {
      std::exception_ptr error;
      try {
        OneThread one;
        (*s.fn)(i);
      } catch (...) {
        error = std::current_exception();
      }
      std::lock_guard<std::mutex> lock(s.mutex);
      if (error && !s.error) s.error = error;
      if (--s.pending == 0) s.done.notify_all();
    }
  };
  for (int t = 1; t < n; ++t) pool.Schedule([state, work] { work(*state); });
  work(*state);
  std::unique_lock<std::mutex> lock(state->mutex);
  state->done.wait(lock, [&] { return state->pending == 0; });
  if (state->error) std::rethrow_exception(state->error);
}

// Runs `op` with src/dst/weights bound to the given pointers, the batch cut into one slice per
// thread of XLA's pool. The kernel is reordered between HWIO and the primitives' layout when they
// differ; the slices' kernel gradients are summed in slice 0's layout.
ffi::Error Run(ffi::ThreadPool pool, Op op, const Geometry& g, float* src, float* weights,
               float* dst) {
  try {
    const int64_t batch = g.src[0];
    const int parts = static_cast<int>(std::clamp<int64_t>(pool.num_threads(), 1, batch));
    const int64_t src_image = g.src[1] * g.src[2] * g.src[3];
    const int64_t dst_image = g.dst[1] * g.dst[2] * g.dst[3];
    std::vector<int64_t> begin(parts);
    std::vector<Geometry> slice(parts, g);
    std::vector<const Compiled*> compiled(parts);
    OneThread one;  // primitives are created for the one thread that runs each
    for (int i = 0; i < parts; ++i) {
      begin[i] = batch * i / parts;
      slice[i].src[0] = slice[i].dst[0] = batch * (i + 1) / parts - begin[i];
      compiled[i] = &Lookup(op, slice[i]);
    }
    dnnl::stream stream(Engine());
    memory::desc hwio = F32(g.weights, Tag::hwio);  // as JAX stores kernels
    memory user_weights(hwio, Engine(), weights);
    // The forward and input-gradient slices read the kernel in their primitive's layout (one
    // reorder per distinct layout: slice sizes differ by at most one image); the kernel-gradient
    // slices each write their own.
    std::vector<memory> kernel(parts);
    for (int i = 0; i < parts; ++i) {
      const memory::desc& want = compiled[i]->weights;
      if (op == Op::kKernelGradient) {
        kernel[i] = i == 0 && want == hwio ? user_weights : memory(want, Engine());
        continue;
      }
      for (int j = 0; j < i && !kernel[i]; ++j) {
        if (compiled[j]->weights == want) kernel[i] = kernel[j];
      }
      if (kernel[i]) continue;
      kernel[i] = want == hwio ? user_weights : memory(want, Engine());
      if (want != hwio) {
        dnnl::reorder(user_weights, kernel[i]).execute(stream, user_weights, kernel[i]);
      }
    }
    ParallelFor(pool, parts, [&](int i) {
      const Compiled& c = *compiled[i];
      memory src_mem(F32(slice[i].src, Tag::nhwc), Engine(), src + begin[i] * src_image);
      memory dst_mem(F32(slice[i].dst, Tag::nhwc), Engine(), dst + begin[i] * dst_image);
      memory scratch(c.scratchpad, Engine());
      std::unordered_map<int, memory> args{{DNNL_ARG_SCRATCHPAD, scratch}};
      switch (op) {
        case Op::kForward:
          args.insert({{DNNL_ARG_SRC, src_mem}, {DNNL_ARG_WEIGHTS, kernel[i]},
                       {DNNL_ARG_DST, dst_mem}});
          break;
        case Op::kInputGradient:
          args.insert({{DNNL_ARG_DIFF_SRC, src_mem}, {DNNL_ARG_WEIGHTS, kernel[i]},
                       {DNNL_ARG_DIFF_DST, dst_mem}});
          break;
        case Op::kKernelGradient:
          args.insert({{DNNL_ARG_SRC, src_mem}, {DNNL_ARG_DIFF_WEIGHTS, kernel[i]},
                       {DNNL_ARG_DIFF_DST, dst_mem}});
          break;
      }
      dnnl::stream slice_stream(Engine());
      c.primitive.execute(slice_stream, args);
      slice_stream.wait();
    });
    if (op == Op::kKernelGradient) {
      // The sum of the slices' gradients, in slice 0's layout, then into HWIO.
      const memory::desc& layout = compiled[0]->weights;
      float* total = static_cast<float*>(kernel[0].get_data_handle());
      const size_t size = layout.get_size() / sizeof(float);
      for (int i = 1; i < parts; ++i) {
        memory part = kernel[i];
        if (compiled[i]->weights != layout) {
          part = memory(layout, Engine());
          dnnl::reorder(kernel[i], part).execute(stream, kernel[i], part);
        }
        const float* p = static_cast<const float*>(part.get_data_handle());
        for (size_t e = 0; e < size; ++e) total[e] += p[e];
      }
      if (kernel[0] != user_weights) {
        dnnl::reorder(kernel[0], user_weights).execute(stream, kernel[0], user_weights);
      }
    }
    stream.wait();
  } catch (const dnnl::error& e) {
    return ffi::Error(ffi::ErrorCode::kInternal, std::string("oneDNN: ") + e.what());
  } catch (const std::exception& e) {
    return ffi::Error(ffi::ErrorCode::kInternal, e.what());
  }
  return ffi::Error::Success();
}

ffi::Error Forward(ffi::ThreadPool pool, ffi::Buffer<ffi::F32> x, ffi::Buffer<ffi::F32> k,
                   ffi::ResultBuffer<ffi::F32> y, ffi::Span<const int64_t> strides,
                   ffi::Span<const int64_t> dilation, ffi::Span<const int64_t> padding) {
  Geometry g = MakeGeometry(x.dimensions(), k.dimensions(), y->dimensions(), strides, dilation,
                            padding);
  return Run(pool, Op::kForward, g, x.typed_data(), k.typed_data(), y->typed_data());
}

ffi::Error InputGradient(ffi::ThreadPool pool, ffi::Buffer<ffi::F32> dy, ffi::Buffer<ffi::F32> k,
                         ffi::ResultBuffer<ffi::F32> dx, ffi::Span<const int64_t> strides,
                         ffi::Span<const int64_t> dilation, ffi::Span<const int64_t> padding) {
  Geometry g = MakeGeometry(dx->dimensions(), k.dimensions(), dy.dimensions(), strides, dilation,
                            padding);
  return Run(pool, Op::kInputGradient, g, dx->typed_data(), k.typed_data(), dy.typed_data());
}

ffi::Error KernelGradient(ffi::ThreadPool pool, ffi::Buffer<ffi::F32> x, ffi::Buffer<ffi::F32> dy,
                          ffi::ResultBuffer<ffi::F32> dk, ffi::Span<const int64_t> strides,
                          ffi::Span<const int64_t> dilation, ffi::Span<const int64_t> padding) {
  Geometry g = MakeGeometry(x.dimensions(), dk->dimensions(), dy.dimensions(), strides, dilation,
                            padding);
  return Run(pool, Op::kKernelGradient, g, x.typed_data(), dk->typed_data(), dy.typed_data());
}

}  // namespace

// Two float32 operands, one float32 result, strides and padding: the signature of all three.
#define JAXGAN_BIND                                         \
  ffi::Ffi::Bind()                                          \
      .Ctx<ffi::ThreadPool>()                               \
      .Arg<ffi::Buffer<ffi::F32>>()                         \
      .Arg<ffi::Buffer<ffi::F32>>()                         \
      .Ret<ffi::Buffer<ffi::F32>>()                         \
      .Attr<ffi::Span<const int64_t>>("strides")            \
      .Attr<ffi::Span<const int64_t>>("dilation")           \
      .Attr<ffi::Span<const int64_t>>("padding")

XLA_FFI_DEFINE_HANDLER_SYMBOL(JaxganConvForward, Forward, JAXGAN_BIND);
XLA_FFI_DEFINE_HANDLER_SYMBOL(JaxganConvInputGradient, InputGradient, JAXGAN_BIND);
XLA_FFI_DEFINE_HANDLER_SYMBOL(JaxganConvKernelGradient, KernelGradient, JAXGAN_BIND);
XLA_FFI_DEFINE_HANDLER_SYMBOL(JaxganConvKernelGradientAsForward, Forward, JAXGAN_BIND);
