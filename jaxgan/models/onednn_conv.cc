// oneDNN 2-D convolutions as XLA FFI custom calls: the three first-order ops of jaxgan's
// convolution family (jaxgan/models/fast_conv.py), float32, NHWC activations, HWIO kernels.
//
//   JaxganConvForward        (x, k)  -> y    lax.conv_general_dilated
//   JaxganConvInputGradient  (dy, k) -> dx   its transpose in x
//   JaxganConvKernelGradient (x, dy) -> dk   its transpose in k
//
// Attributes: strides (sh, sw) and explicit padding (top, bottom, left, right), as lax's.
// Every shape comes from the buffers. Built on first use by jaxgan/models/onednn.py.

#include <cstdint>
#include <cstring>
#include <map>
#include <memory>
#include <mutex>
#include <stdexcept>
#include <string>
#include <tuple>
#include <unordered_map>
#include <vector>

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
  memory::dims src, weights, dst, strides, pad_l, pad_r;
  bool operator<(const Geometry& o) const {
    return std::tie(src, weights, dst, strides, pad_l, pad_r) <
           std::tie(o.src, o.weights, o.dst, o.strides, o.pad_l, o.pad_r);
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
      F32(g.src, Tag::nhwc), F32(g.weights, Tag::any), F32(g.dst, Tag::nhwc), g.strides, g.pad_l,
      g.pad_r, Attributes());
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
          g.pad_l, g.pad_r, forward, Attributes());
      return {dnnl::convolution_backward_data(pd), pd.weights_desc(), pd.scratchpad_desc()};
    }
    case Op::kKernelGradient: {
      dnnl::convolution_backward_weights::primitive_desc pd(
          Engine(), dnnl::algorithm::convolution_direct, src, any_weights, dst, g.strides,
          g.pad_l, g.pad_r, forward, Attributes());
      return {dnnl::convolution_backward_weights(pd), pd.diff_weights_desc(),
              pd.scratchpad_desc()};
    }
  }
  throw std::logic_error("unknown op");
}

// Called under Run's lock.
const Compiled& Lookup(Op op, const Geometry& g) {
  static std::map<std::pair<int, Geometry>, std::unique_ptr<Compiled>> cache;
  auto& entry = cache[{static_cast<int>(op), g}];
  if (!entry) entry = std::make_unique<Compiled>(Compile(op, g));
  return *entry;
}

Geometry MakeGeometry(ffi::Span<const int64_t> x, ffi::Span<const int64_t> k,
                      ffi::Span<const int64_t> y, ffi::Span<const int64_t> strides,
                      ffi::Span<const int64_t> padding) {
  return {Nchw(x), Oihw(k), Nchw(y), {strides[0], strides[1]}, {padding[0], padding[2]},
          {padding[1], padding[3]}};
}

// Runs `op` with src/dst/weights bound to the given pointers; the kernel is reordered between
// HWIO and the primitive's layout when they differ.
ffi::Error Run(Op op, const Geometry& g, float* src, float* weights, float* dst) {
  // XLA runs independent thunks concurrently; two convolutions each taking every core would
  // slow each other down (a DCGAN step: 139-142 ms with this lock, 147-166 without).
  static std::mutex exclusive;
  std::lock_guard<std::mutex> lock(exclusive);
  try {
    const Compiled& c = Lookup(op, g);
    dnnl::stream stream(Engine());
    memory::desc hwio = F32(g.weights, Tag::hwio);  // as JAX stores kernels
    memory user_weights(hwio, Engine(), weights);
    bool reorder = c.weights != hwio;
    memory prim_weights = reorder ? memory(c.weights, Engine()) : user_weights;
    if (reorder && op != Op::kKernelGradient) {
      dnnl::reorder(user_weights, prim_weights).execute(stream, user_weights, prim_weights);
    }
    memory src_mem(F32(g.src, Tag::nhwc), Engine(), src);
    memory dst_mem(F32(g.dst, Tag::nhwc), Engine(), dst);
    memory scratch(c.scratchpad, Engine());
    std::unordered_map<int, memory> args{{DNNL_ARG_SCRATCHPAD, scratch}};
    switch (op) {
      case Op::kForward:
        args.insert({{DNNL_ARG_SRC, src_mem}, {DNNL_ARG_WEIGHTS, prim_weights},
                     {DNNL_ARG_DST, dst_mem}});
        break;
      case Op::kInputGradient:
        args.insert({{DNNL_ARG_DIFF_SRC, src_mem}, {DNNL_ARG_WEIGHTS, prim_weights},
                     {DNNL_ARG_DIFF_DST, dst_mem}});
        break;
      case Op::kKernelGradient:
        args.insert({{DNNL_ARG_SRC, src_mem}, {DNNL_ARG_DIFF_WEIGHTS, prim_weights},
                     {DNNL_ARG_DIFF_DST, dst_mem}});
        break;
    }
    c.primitive.execute(stream, args);
    if (reorder && op == Op::kKernelGradient) {
      dnnl::reorder(prim_weights, user_weights).execute(stream, prim_weights, user_weights);
    }
    stream.wait();
  } catch (const dnnl::error& e) {
    return ffi::Error(ffi::ErrorCode::kInternal, std::string("oneDNN: ") + e.what());
  } catch (const std::exception& e) {
    return ffi::Error(ffi::ErrorCode::kInternal, e.what());
  }
  return ffi::Error::Success();
}

ffi::Error Forward(ffi::Buffer<ffi::F32> x, ffi::Buffer<ffi::F32> k,
                   ffi::ResultBuffer<ffi::F32> y, ffi::Span<const int64_t> strides,
                   ffi::Span<const int64_t> padding) {
  Geometry g = MakeGeometry(x.dimensions(), k.dimensions(), y->dimensions(), strides, padding);
  return Run(Op::kForward, g, x.typed_data(), k.typed_data(), y->typed_data());
}

ffi::Error InputGradient(ffi::Buffer<ffi::F32> dy, ffi::Buffer<ffi::F32> k,
                         ffi::ResultBuffer<ffi::F32> dx, ffi::Span<const int64_t> strides,
                         ffi::Span<const int64_t> padding) {
  Geometry g = MakeGeometry(dx->dimensions(), k.dimensions(), dy.dimensions(), strides, padding);
  return Run(Op::kInputGradient, g, dx->typed_data(), k.typed_data(), dy.typed_data());
}

ffi::Error KernelGradient(ffi::Buffer<ffi::F32> x, ffi::Buffer<ffi::F32> dy,
                          ffi::ResultBuffer<ffi::F32> dk, ffi::Span<const int64_t> strides,
                          ffi::Span<const int64_t> padding) {
  Geometry g = MakeGeometry(x.dimensions(), dk->dimensions(), dy.dimensions(), strides, padding);
  return Run(Op::kKernelGradient, g, x.typed_data(), dk->typed_data(), dy.typed_data());
}

}  // namespace

// Two float32 operands, one float32 result, strides and padding: the signature of all three.
#define JAXGAN_BIND                                         \
  ffi::Ffi::Bind()                                          \
      .Arg<ffi::Buffer<ffi::F32>>()                         \
      .Arg<ffi::Buffer<ffi::F32>>()                         \
      .Ret<ffi::Buffer<ffi::F32>>()                         \
      .Attr<ffi::Span<const int64_t>>("strides")            \
      .Attr<ffi::Span<const int64_t>>("padding")

XLA_FFI_DEFINE_HANDLER_SYMBOL(JaxganConvForward, Forward, JAXGAN_BIND);
XLA_FFI_DEFINE_HANDLER_SYMBOL(JaxganConvInputGradient, InputGradient, JAXGAN_BIND);
XLA_FFI_DEFINE_HANDLER_SYMBOL(JaxganConvKernelGradient, KernelGradient, JAXGAN_BIND);
