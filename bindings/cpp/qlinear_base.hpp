// qlinear_base.hpp: the first half of the C++ wrapper (qlinear.hpp includes it; include
// qlinear.hpp, not this file): qlinear::Error, Span, the enums, the handle plumbing, and the
// Device, QuantConfig and Linear classes.
#ifndef QLINEAR_BASE_HPP
#define QLINEAR_BASE_HPP

#include <cstddef>
#include <cstdint>
#include <limits>
#include <stdexcept>
#include <string>
#include <type_traits>
#include <utility>
#include <vector>

#include "qlinear.h"

namespace qlinear {

/// A failed qlinear call: status() is the C status code, what() the library's message.
class Error : public std::runtime_error {
public:
    Error(qlinear_status status, const std::string& message)
        : std::runtime_error(message), status_(status) {}

    /// The C status code (never QLINEAR_OK).
    qlinear_status status() const noexcept { return status_; }

private:
    qlinear_status status_;
};

/// Throws qlinear::Error for a failed status with the library's thread-local message.
inline void check(qlinear_status status) {
    if (status != QLINEAR_OK) {
        const char* msg = qlinear_last_error_message();
        throw Error(status, msg != nullptr ? msg : "");
    }
}

/// The library version, "MAJOR.MINOR.PATCH".
inline std::string version() { return qlinear_version(); }

/// A non-owning view of contiguous elements (a minimal std::span for C++17).
template <class T>
class Span {
public:
    using element_type = T;
    using value_type = std::remove_cv_t<T>;

    constexpr Span() noexcept = default;
    constexpr Span(T* data, std::size_t size) noexcept : data_(data), size_(size) {}
    template <std::size_t N>
    constexpr Span(T (&array)[N]) noexcept : data_(array), size_(N) {}
    /// From any contiguous container with data() and size() (std::vector, std::array, Span).
    /// The view does not extend a temporary's life: use it within the full expression.
    template <class C,
              class = std::enable_if_t<
                  !std::is_same_v<std::remove_cv_t<std::remove_reference_t<C>>, Span> &&
                  std::is_convertible_v<decltype(std::declval<C&>().data()), T*>>>
    constexpr Span(C&& container) noexcept : data_(container.data()), size_(container.size()) {}

    constexpr T* data() const noexcept { return data_; }
    constexpr std::size_t size() const noexcept { return size_; }
    constexpr bool empty() const noexcept { return size_ == 0; }
    constexpr T* begin() const noexcept { return data_; }
    constexpr T* end() const noexcept { return data_ + size_; }
    constexpr T& operator[](std::size_t i) const noexcept { return data_[i]; }

private:
    T* data_ = nullptr;
    std::size_t size_ = 0;
};

/// Which weights share one scale (values of qlinear_granularity).
enum class Granularity : std::uint32_t {
    PerTensor = QLINEAR_GRANULARITY_PER_TENSOR,
    PerChannel = QLINEAR_GRANULARITY_PER_CHANNEL,
    Group = QLINEAR_GRANULARITY_GROUP,
};

/// How scales are stored (values of qlinear_scale_dtype).
enum class ScaleDtype : std::uint32_t {
    F32 = QLINEAR_SCALE_F32,
    F16 = QLINEAR_SCALE_F16,
};

/// What forward does with activations (values of qlinear_activation_mode).
enum class ActivationMode : std::uint32_t {
    Exact = QLINEAR_ACTIVATION_EXACT,
    Dyn8 = QLINEAR_ACTIVATION_DYN8,  ///< int8 activations, one scale per 32 inputs
    Dyn8PerRow = QLINEAR_ACTIVATION_DYN8_PER_ROW,  ///< int8 activations, one scale per row
};

/// What a weight code means (values of qlinear_weight_format).
enum class WeightFormat : std::uint32_t {
    Int8 = QLINEAR_FORMAT_INT8,
    Int4 = QLINEAR_FORMAT_INT4,  ///< uniform 4-bit grid −8..7
    Cb4 = QLINEAR_FORMAT_CB4,    ///< 4-bit indices into 16 non-uniform levels (symmetric)
};

namespace detail {

/// Owns one C handle; Free is the handle's qlinear_*_free function.
template <class T, void (*Free)(T*)>
class Handle {
public:
    Handle() noexcept = default;
    explicit Handle(T* p) noexcept : p_(p) {}
    Handle(const Handle&) = delete;
    Handle& operator=(const Handle&) = delete;
    Handle(Handle&& other) noexcept : p_(std::exchange(other.p_, nullptr)) {}
    Handle& operator=(Handle&& other) noexcept {
        if (this != &other) {
            reset();
            p_ = std::exchange(other.p_, nullptr);
        }
        return *this;
    }
    ~Handle() { reset(); }

    void reset() noexcept {
        if (p_ != nullptr) Free(p_);
        p_ = nullptr;
    }
    T* get() const noexcept { return p_; }

private:
    T* p_ = nullptr;
};

/// rows * n, or false when it overflows.
inline bool mul(std::size_t rows, std::size_t n, std::size_t* out) noexcept {
    if (n != 0 && rows > std::numeric_limits<std::size_t>::max() / n) return false;
    *out = rows * n;
    return true;
}

/// Runs a forward that returns a fresh vector. When the lengths cannot be right, the C call is
/// still made (with an empty output, which is never valid) so that the error, its status and
/// its message come from the library, and nothing huge is allocated first.
template <class H, class Elem, class Fn>
std::vector<Elem> forward_vec(Fn fn, const H* h, std::size_t in, std::size_t out,
                              const Elem* x, std::size_t x_len, std::size_t rows) {
    std::size_t want_x = 0, y_len = 0;
    if (h == nullptr || !mul(rows, in, &want_x) || want_x != x_len || !mul(rows, out, &y_len) ||
        y_len == 0) {
        Elem dummy{};
        check(fn(h, x, rows, x_len, &dummy, 0));
        throw Error(QLINEAR_ERR_INTERNAL, "qlinear: forward accepted an empty output");
    }
    std::vector<Elem> y(y_len);
    check(fn(h, x, rows, x_len, y.data(), y.size()));
    return y;
}

}  // namespace detail

/// A CPU device: ISA path, worker threads and allocator. Layers keep their own reference, so a
/// Device may be destroyed before the layers created on it.
class Device {
public:
    /// Owns `threads` worker threads (0 = one per core, 1 = run on the caller's thread); the ISA
    /// comes from QLINEAR_ISA or is the best available.
    explicit Device(std::size_t threads = 0) {
        qlinear_device* d = nullptr;
        check(qlinear_device_create(threads, &d));
        h_ = Handle(d);
    }

    /// Forces the ISA path: "scalar", "avx2", "avx512" or "auto". Unknown names throw
    /// INVALID_ARGUMENT; a path this CPU lacks throws UNSUPPORTED.
    static Device with_isa(std::size_t threads, const std::string& isa) {
        qlinear_device* d = nullptr;
        check(qlinear_device_create_with_isa(threads, isa.c_str(), &d));
        return Device(d);
    }

    /// Every option of qlinear_device_create_custom (host job system and allocator; the
    /// callbacks and contexts must outlive the device and every layer created on it).
    static Device custom(std::size_t threads, const char* isa, qlinear_job_run_fn run,
                         void* run_ctx, qlinear_alloc_fn alloc, qlinear_free_fn free,
                         void* alloc_ctx) {
        qlinear_device* d = nullptr;
        check(qlinear_device_create_custom(threads, isa, run, run_ctx, alloc, free, alloc_ctx,
                                           &d));
        return Device(d);
    }

    /// Whether this CPU can run the ISA path `isa`.
    static bool isa_available(const std::string& isa) {
        bool available = false;
        check(qlinear_isa_is_available(isa.c_str(), &available));
        return available;
    }

    Device(const Device&) = delete;
    Device& operator=(const Device&) = delete;
    Device(Device&&) noexcept = default;
    Device& operator=(Device&&) noexcept = default;
    ~Device() = default;

    /// Threads that may run one call's tasks at once.
    std::size_t threads() const {
        std::size_t n = 0;
        check(qlinear_device_threads(h_.get(), &n));
        return n;
    }
    /// The ISA path: "scalar", "avx2" or "avx512".
    std::string isa() const {
        const char* name = nullptr;
        check(qlinear_device_isa(h_.get(), &name));
        return name;
    }

    /// The C handle (still owned by this object); NULL once moved from.
    const qlinear_device* get() const noexcept { return h_.get(); }

private:
    using Handle = detail::Handle<qlinear_device, qlinear_device_free>;
    explicit Device(qlinear_device* d) noexcept : h_(d) {}
    Handle h_;
};

/// A quantization recipe. Setters return *this for chaining and throw on invalid values.
class QuantConfig {
public:
    /// INT8: symmetric, groups of 32, f16 scales chosen by an error search, exact activations.
    static QuantConfig int8() {
        qlinear_quant_config* c = nullptr;
        check(qlinear_quant_config_create_int8(&c));
        return QuantConfig(c);
    }
    /// The 4-bit default: the cb4 codebook, groups of 32, f16 scales chosen by an error
    /// search with a least-squares refit, exact activations.
    static QuantConfig int4() {
        qlinear_quant_config* c = nullptr;
        check(qlinear_quant_config_create_int4(&c));
        return QuantConfig(c);
    }
    /// Uniform 4-bit integer codes, otherwise as int4().
    static QuantConfig int4_uniform() {
        qlinear_quant_config* c = nullptr;
        check(qlinear_quant_config_create_int4_uniform(&c));
        return QuantConfig(c);
    }

    QuantConfig(const QuantConfig&) = delete;
    QuantConfig& operator=(const QuantConfig&) = delete;
    QuantConfig(QuantConfig&&) noexcept = default;
    QuantConfig& operator=(QuantConfig&&) noexcept = default;
    ~QuantConfig() = default;

    /// 8 (WeightFormat::Int8) or 4 (the uniform WeightFormat::Int4).
    QuantConfig& bits(std::uint32_t bits) {
        check(qlinear_quant_config_set_bits(h_.get(), bits));
        return *this;
    }
    QuantConfig& format(WeightFormat format) {
        check(qlinear_quant_config_set_format(h_.get(), static_cast<std::uint32_t>(format)));
        return *this;
    }
    /// Group-wise scales with a power-of-two group from 32 to 1024, or per-channel when 0.
    QuantConfig& group_size(std::size_t group_size) {
        check(qlinear_quant_config_set_group_size(h_.get(), group_size));
        return *this;
    }
    /// The granularity; `group_size` is used only for Granularity::Group.
    QuantConfig& granularity(Granularity g, std::size_t group_size = 0) {
        check(qlinear_quant_config_set_granularity(h_.get(), static_cast<std::uint32_t>(g),
                                                   group_size));
        return *this;
    }
    /// Symmetric (no zero points) or asymmetric.
    QuantConfig& symmetric(bool symmetric) {
        check(qlinear_quant_config_set_symmetric(h_.get(), symmetric));
        return *this;
    }
    QuantConfig& activation_mode(ActivationMode mode) {
        check(qlinear_quant_config_set_activation_mode(h_.get(),
                                                       static_cast<std::uint32_t>(mode)));
        return *this;
    }
    QuantConfig& scale_dtype(ScaleDtype dtype) {
        check(qlinear_quant_config_set_scale_dtype(h_.get(), static_cast<std::uint32_t>(dtype)));
        return *this;
    }
    /// The squared-error scale search (on by default).
    QuantConfig& search(bool search) {
        check(qlinear_quant_config_set_search(h_.get(), search));
        return *this;
    }

    /// The C handle (still owned by this object); NULL once moved from.
    qlinear_quant_config* get() const noexcept { return h_.get(); }

private:
    using Handle = detail::Handle<qlinear_quant_config, qlinear_quant_config_free>;
    explicit QuantConfig(qlinear_quant_config* c) noexcept : h_(c) {}
    Handle h_;
};

/// An f32 linear layer y = x·Wᵀ + b. Weights are row-major [out_features][in_features].
class Linear {
public:
    /// Copies `weights` (out·in values) and `bias` (out values, or empty for none).
    Linear(const Device& device, Span<const float> weights, std::size_t out_features,
           std::size_t in_features, Span<const float> bias = {}) {
        qlinear_linear* l = nullptr;
        check(qlinear_linear_create(device.get(), weights.data(), weights.size(), out_features,
                                    in_features, bias.empty() ? nullptr : bias.data(),
                                    bias.size(), &l));
        h_ = Handle(l);
        out_ = out_features;
        in_ = in_features;
    }

    Linear(const Linear&) = delete;
    Linear& operator=(const Linear&) = delete;
    Linear(Linear&&) noexcept = default;
    Linear& operator=(Linear&&) noexcept = default;
    ~Linear() = default;

    std::size_t out_features() const {
        std::size_t out = 0, in = 0;
        check(qlinear_linear_shape(h_.get(), &out, &in));
        return out;
    }
    std::size_t in_features() const {
        std::size_t out = 0, in = 0;
        check(qlinear_linear_shape(h_.get(), &out, &in));
        return in;
    }

    /// y = x·Wᵀ + b for `rows` rows (x has rows·in values); returns rows·out values.
    std::vector<float> forward(const float* x, std::size_t x_len, std::size_t rows) const {
        return detail::forward_vec(qlinear_linear_forward, h_.get(), in_, out_, x, x_len, rows);
    }
    std::vector<float> forward(Span<const float> x, std::size_t rows) const {
        return forward(x.data(), x.size(), rows);
    }
    std::vector<float> forward(const std::vector<float>& x, std::size_t rows) const {
        return forward(x.data(), x.size(), rows);
    }
    /// Writes rows·out values into `y` (written only on success).
    void forward_into(Span<const float> x, std::size_t rows, Span<float> y) const {
        check(qlinear_linear_forward(h_.get(), x.data(), rows, x.size(), y.data(), y.size()));
    }

    /// The C handle (still owned by this object); NULL once moved from.
    const qlinear_linear* get() const noexcept { return h_.get(); }

private:
    using Handle = detail::Handle<qlinear_linear, qlinear_linear_free>;
    Handle h_;
    std::size_t out_ = 0, in_ = 0;
};

}  // namespace qlinear

#endif  // QLINEAR_BASE_HPP
