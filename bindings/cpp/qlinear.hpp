// qlinear.hpp: header-only C++17 wrapper over the qlinear C ABI (include/qlinear.h).
//
// * Move-only RAII classes own the C handles: Device, QuantConfig, Linear, QuantizedLinear.
//   Copying is deleted, moving is noexcept and leaves the source empty (using an empty object
//   makes the library report QLINEAR_ERR_NULL_ARGUMENT, thrown as qlinear::Error).
// * Every failing C call throws qlinear::Error, which carries the qlinear_status code and the
//   library's last error message (read on the failing thread, right after the call).
// * Thread safety is the C API's: forward/forward_into and the const accessors of a layer may
//   run on many threads at once; construction, assignment and destruction need exclusive
//   access. QuantConfig setters need exclusive access to the config.
// * The library never keeps a pointer passed to it after a call returns.
//
// Link with -lqlinear (the library's SONAME is libqlinear.so.0).
//
// The file is in two parts: qlinear_base.hpp (errors, views, enums, Device, QuantConfig,
// Linear) and this one (QuantizedParts, QuantizedLinear, Model). Install both side by side.
#ifndef QLINEAR_HPP
#define QLINEAR_HPP

#include "qlinear_base.hpp"

namespace qlinear {

/// The logical layout of a quantized layer (see qlinear_quantized_linear_from_parts): what
/// QuantizedLinear::parts() copies out and QuantizedLinear::from_parts() builds from.
struct QuantizedParts {
    std::size_t out_features = 0;
    std::size_t in_features = 0;
    std::uint32_t bits = 8;
    Granularity granularity = Granularity::Group;
    std::size_t group_size = 32;  ///< used only for Granularity::Group
    ScaleDtype scale_dtype = ScaleDtype::F32;
    ActivationMode activation_mode = ActivationMode::Exact;
    std::vector<std::uint8_t> codes;       ///< row-major; 4 bits: two per byte, low nibble first
    std::vector<float> scales;             ///< [out][groups per row]
    std::vector<std::int8_t> zero_points;  ///< one per scale; empty when symmetric
    /// cb4: the 16 levels 4-bit codes index (w = scale·codebook[q]); empty for integer codes.
    std::vector<std::int8_t> codebook;
    std::vector<float> bias;  ///< out values, or empty for none
};

/// A linear layer with INT8, INT4 or cb4 weights. forward may run on many threads at once.
class QuantizedLinear {
public:
    /// Quantizes f32 `weights` [out][in] with `config`; `bias` has `out` values or is empty.
    static QuantizedLinear quantize(const Device& device, Span<const float> weights,
                                    std::size_t out_features, std::size_t in_features,
                                    const QuantConfig& config, Span<const float> bias = {}) {
        qlinear_quantized_linear* q = nullptr;
        check(qlinear_quantized_linear_quantize(device.get(), weights.data(), weights.size(),
                                                out_features, in_features,
                                                bias.empty() ? nullptr : bias.data(), bias.size(),
                                                config.get(), &q));
        return QuantizedLinear(q);
    }

    /// Quantizes an f32 layer (weights, bias and device are taken from it).
    static QuantizedLinear from_linear(const Linear& linear, const QuantConfig& config) {
        qlinear_quantized_linear* q = nullptr;
        check(qlinear_quantized_linear_from_linear(linear.get(), config.get(), &q));
        return QuantizedLinear(q);
    }

    /// Builds a layer from raw quantized parts (copied). Empty vectors are passed as NULL; a
    /// non-empty codebook makes a cb4 layer.
    static QuantizedLinear from_parts(const Device& device, const QuantizedParts& p) {
        qlinear_quantized_linear* q = nullptr;
        if (!p.codebook.empty()) {
            if (p.bits != 4 || !p.zero_points.empty())
                throw Error(QLINEAR_ERR_INVALID_ARGUMENT,
                            "a codebook needs 4-bit codes and no zero points");
            check(qlinear_quantized_linear_from_codebook_parts(
                device.get(), p.out_features, p.in_features,
                static_cast<std::uint32_t>(p.granularity), p.group_size,
                static_cast<std::uint32_t>(p.scale_dtype),
                p.codes.empty() ? nullptr : p.codes.data(), p.codes.size(),
                p.scales.empty() ? nullptr : p.scales.data(), p.scales.size(),
                p.codebook.data(), p.codebook.size(), p.bias.empty() ? nullptr : p.bias.data(),
                p.bias.size(), static_cast<std::uint32_t>(p.activation_mode), &q));
            return QuantizedLinear(q);
        }
        check(qlinear_quantized_linear_from_parts(
            device.get(), p.out_features, p.in_features, p.bits,
            static_cast<std::uint32_t>(p.granularity), p.group_size,
            static_cast<std::uint32_t>(p.scale_dtype), p.codes.empty() ? nullptr : p.codes.data(),
            p.codes.size(), p.scales.empty() ? nullptr : p.scales.data(), p.scales.size(),
            p.zero_points.empty() ? nullptr : p.zero_points.data(), p.zero_points.size(),
            p.bias.empty() ? nullptr : p.bias.data(), p.bias.size(),
            static_cast<std::uint32_t>(p.activation_mode), &q));
        return QuantizedLinear(q);
    }

    /// The codes and scales lengths from_parts expects for a shape and recipe.
    static std::pair<std::size_t, std::size_t> layout_lengths(std::size_t out_features,
                                                              std::size_t in_features,
                                                              std::uint32_t bits,
                                                              Granularity granularity,
                                                              std::size_t group_size) {
        std::size_t codes = 0, scales = 0;
        check(qlinear_quantized_layout_lengths(out_features, in_features, bits,
                                               static_cast<std::uint32_t>(granularity),
                                               group_size, &codes, &scales));
        return {codes, scales};
    }

    QuantizedLinear(const QuantizedLinear&) = delete;
    QuantizedLinear& operator=(const QuantizedLinear&) = delete;
    QuantizedLinear(QuantizedLinear&&) noexcept = default;
    QuantizedLinear& operator=(QuantizedLinear&&) noexcept = default;
    ~QuantizedLinear() = default;

    std::size_t in_features() const {
        std::size_t v = 0;
        check(qlinear_quantized_linear_in_features(h_.get(), &v));
        return v;
    }
    std::size_t out_features() const {
        std::size_t v = 0;
        check(qlinear_quantized_linear_out_features(h_.get(), &v));
        return v;
    }
    /// 4 or 8.
    std::uint32_t bits() const {
        std::uint32_t v = 0;
        check(qlinear_quantized_linear_bits(h_.get(), &v));
        return v;
    }
    WeightFormat format() const {
        std::uint32_t v = 0;
        check(qlinear_quantized_linear_format(h_.get(), &v));
        return static_cast<WeightFormat>(v);
    }
    Granularity granularity() const {
        std::uint32_t v = 0;
        check(qlinear_quantized_linear_granularity(h_.get(), &v));
        return static_cast<Granularity>(v);
    }
    /// Inputs per group; 0 for per-channel and per-tensor scales.
    std::size_t group_size() const {
        std::size_t v = 0;
        check(qlinear_quantized_linear_group_size(h_.get(), &v));
        return v;
    }
    bool symmetric() const {
        bool v = false;
        check(qlinear_quantized_linear_symmetric(h_.get(), &v));
        return v;
    }
    ScaleDtype scale_dtype() const {
        std::uint32_t v = 0;
        check(qlinear_quantized_linear_scale_dtype(h_.get(), &v));
        return static_cast<ScaleDtype>(v);
    }
    ActivationMode activation_mode() const {
        std::uint32_t v = 0;
        check(qlinear_quantized_linear_activation_mode(h_.get(), &v));
        return static_cast<ActivationMode>(v);
    }
    /// Bytes of the quantized weight (codes, scales, zero points).
    std::size_t weight_bytes() const {
        std::size_t v = 0;
        check(qlinear_quantized_linear_weight_bytes(h_.get(), &v));
        return v;
    }
    /// Bytes saved versus f32 weights.
    std::size_t memory_saved() const {
        std::size_t v = 0;
        check(qlinear_quantized_linear_memory_savings_bytes(h_.get(), &v));
        return v;
    }

    /// Copies out the logical layout (codes, scales, zero points and the recipe). The C API
    /// cannot copy out the bias, so `bias` is left empty.
    QuantizedParts parts() const {
        QuantizedParts p;
        p.out_features = out_features();
        p.in_features = in_features();
        p.bits = bits();
        p.granularity = granularity();
        p.group_size = group_size();
        p.scale_dtype = scale_dtype();
        p.activation_mode = activation_mode();
        std::size_t codes = 0, scales = 0, zeros = 0;
        check(qlinear_quantized_linear_layout(h_.get(), &codes, &scales, &zeros));
        p.codes.resize(codes);
        p.scales.resize(scales);
        p.zero_points.resize(zeros);
        check(qlinear_quantized_linear_copy_codes(h_.get(), p.codes.data(), p.codes.size()));
        check(qlinear_quantized_linear_copy_scales(h_.get(), p.scales.data(), p.scales.size()));
        check(qlinear_quantized_linear_copy_zero_points(
            h_.get(), zeros ? p.zero_points.data() : nullptr, p.zero_points.size()));
        if (format() == WeightFormat::Cb4) {
            p.codebook.resize(16);
            check(qlinear_quantized_linear_copy_codebook(h_.get(), p.codebook.data(),
                                                         p.codebook.size()));
        }
        return p;
    }

    /// y = x·dequant(W)ᵀ + b for `rows` rows (x has rows·in values); returns rows·out values.
    std::vector<float> forward(const float* x, std::size_t x_len, std::size_t rows) const {
        return detail::forward_vec(qlinear_quantized_linear_forward, h_.get(), in_, out_, x,
                                   x_len, rows);
    }
    std::vector<float> forward(Span<const float> x, std::size_t rows) const {
        return forward(x.data(), x.size(), rows);
    }
    std::vector<float> forward(const std::vector<float>& x, std::size_t rows) const {
        return forward(x.data(), x.size(), rows);
    }
    /// Writes rows·out values into `y` (written only on success, except when a custom
    /// device's host job system breaks its contract: QLINEAR_ERR_INTERNAL, `y` partly
    /// written). No allocation.
    void forward_into(const float* x, std::size_t x_len, std::size_t rows, float* y,
                      std::size_t y_len) const {
        check(qlinear_quantized_linear_forward(h_.get(), x, rows, x_len, y, y_len));
    }
    void forward_into(Span<const float> x, std::size_t rows, Span<float> y) const {
        forward_into(x.data(), x.size(), rows, y.data(), y.size());
    }

    /// Forward with IEEE f16 activations (bit patterns).
    std::vector<std::uint16_t> forward_f16(Span<const std::uint16_t> x, std::size_t rows) const {
        return detail::forward_vec(qlinear_quantized_linear_forward_f16, h_.get(), in_, out_,
                                   x.data(), x.size(), rows);
    }
    /// Forward with bfloat16 activations (bit patterns).
    std::vector<std::uint16_t> forward_bf16(Span<const std::uint16_t> x, std::size_t rows) const {
        return detail::forward_vec(qlinear_quantized_linear_forward_bf16, h_.get(), in_, out_,
                                   x.data(), x.size(), rows);
    }

    /// The C handle (still owned by this object); NULL once moved from.
    const qlinear_quantized_linear* get() const noexcept { return h_.get(); }

private:
    friend class Model;
    using Handle = detail::Handle<qlinear_quantized_linear, qlinear_quantized_linear_free>;
    explicit QuantizedLinear(qlinear_quantized_linear* q) : h_(q) {
        in_ = in_features();
        out_ = out_features();
    }
    Handle h_;
    std::size_t out_ = 0, in_ = 0;
};

/// Named quantized layers loaded from a qlinear file (docs/FORMAT.md). Layers taken from a
/// model share its weights and stay valid after the model is destroyed.
class Model {
public:
    /// Loads a file; a missing file throws with QLINEAR_ERR_IO, a malformed one with
    /// QLINEAR_ERR_CORRUPT.
    static Model load(const std::string& path, const Device& device) {
        qlinear_model* m = nullptr;
        check(qlinear_model_load_file(path.c_str(), device.get(), &m));
        return Model(m);
    }

    /// Loads a file held in memory; the bytes are not kept after the call.
    static Model load_memory(Span<const std::uint8_t> bytes, const Device& device) {
        static const std::uint8_t empty = 0;
        qlinear_model* m = nullptr;
        check(qlinear_model_load_memory(bytes.data() != nullptr ? bytes.data() : &empty,
                                        bytes.size(), device.get(), &m));
        return Model(m);
    }

    using Named = std::vector<std::pair<std::string, const QuantizedLinear*>>;

    /// Saves `layers` (name, layer) in order to `path`, crash-safely: `path` holds either its
    /// old contents or the complete new file.
    static void save(const std::string& path, const Named& layers) {
        Arrays a(layers);
        check(qlinear_model_save_file(path.c_str(), a.handles.data(), a.names.data(),
                                      a.handles.size()));
    }

    /// The bytes `save` would write; `load_memory` reads them back bit for bit.
    static std::vector<std::uint8_t> save_memory(const Named& layers) {
        Arrays a(layers);
        std::uint8_t* p = nullptr;
        std::size_t n = 0;
        check(qlinear_model_save_memory(a.handles.data(), a.names.data(), a.handles.size(), &p,
                                        &n));
        std::vector<std::uint8_t> bytes(p, p + n);
        qlinear_bytes_free(p, n);
        return bytes;
    }

    Model(const Model&) = delete;
    Model& operator=(const Model&) = delete;

private:
    /// The C arrays of handles and names the save functions take.
    struct Arrays {
        std::vector<const qlinear_quantized_linear*> handles;
        std::vector<const char*> names;
        explicit Arrays(const Named& layers) {
            for (const auto& [name, layer] : layers) {
                handles.push_back(layer != nullptr ? layer->get() : nullptr);
                names.push_back(name.c_str());
            }
        }
    };

public:
    Model(Model&&) noexcept = default;
    Model& operator=(Model&&) noexcept = default;
    ~Model() = default;

    /// Number of layers.
    std::size_t size() const {
        std::size_t n = 0;
        check(qlinear_model_layer_count(h_.get(), &n));
        return n;
    }

    /// Name of layer `i` in file order.
    std::string name(std::size_t i) const {
        const char* n = nullptr;
        check(qlinear_model_layer_name(h_.get(), i, &n));
        return n;
    }

    /// Every layer name, in file order.
    std::vector<std::string> names() const {
        std::vector<std::string> v;
        for (std::size_t i = 0, n = size(); i < n; ++i) v.push_back(name(i));
        return v;
    }

    /// The layer called `name` (shares the model's weights); throws INVALID_ARGUMENT if absent.
    QuantizedLinear layer(const std::string& name) const {
        qlinear_quantized_linear* q = nullptr;
        check(qlinear_model_get_layer(h_.get(), name.c_str(), &q));
        return QuantizedLinear(q);
    }

    /// The C handle (still owned by this object); NULL once moved from.
    const qlinear_model* get() const noexcept { return h_.get(); }

private:
    explicit Model(qlinear_model* m) noexcept : h_(m) {}
    detail::Handle<qlinear_model, qlinear_model_free> h_;
};

/// Quantizes f32 weights [out][in] (free-function spelling of QuantizedLinear::quantize).
inline QuantizedLinear quantize(const Device& device, Span<const float> weights,
                                std::size_t out_features, std::size_t in_features,
                                const QuantConfig& config, Span<const float> bias = {}) {
    return QuantizedLinear::quantize(device, weights, out_features, in_features, config, bias);
}

/// Quantizes an f32 layer (free-function spelling of QuantizedLinear::from_linear).
inline QuantizedLinear quantize(const Linear& linear, const QuantConfig& config) {
    return QuantizedLinear::from_linear(linear, config);
}

}  // namespace qlinear

#endif  // QLINEAR_HPP
