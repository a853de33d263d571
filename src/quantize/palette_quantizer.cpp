#include <lamia/core/atomic_file.hpp>
#include <lamia/core/errors.hpp>
#include <lamia/core/binary_io.hpp>
#include <lamia/core/blas_threads.hpp>
#include <lamia/quantize/detail/tensor_views.hpp>
#include <lamia/quantize/palette_quantizer.hpp>

#include <fmt/format.h>
#include <torch/torch.h>

#include <chrono>
#include <cstring>
#include <exception>
#include <map>
#include <numeric>
#include <random>
#include <string>

namespace lamia {
namespace detail {

torch::Tensor checked_float_tensor(const torch::Tensor& t, std::int64_t dim, const char* what, const char* shape) {
  TORCH_CHECK_VALUE(t.defined(), what, ": expected a ", shape, " float32 tensor, got an undefined tensor");
  TORCH_CHECK_VALUE(t.dim() == dim, what, ": expected a ", dim, "-D tensor (", shape, "), got ", t.dim(),
                    "-D with shape ", t.sizes());
  TORCH_CHECK_VALUE(t.scalar_type() == torch::kFloat32, what, ": expected float32, got ", t.scalar_type());
  TORCH_CHECK_VALUE(t.device().is_cpu(), what, ": expected a CPU tensor, got one on ", t.device());
  return t.contiguous();
}

}  // namespace detail

namespace {
constexpr char kQuantizerMagic[] = "LAMIAPQZ";
constexpr std::uint64_t kMaxPositions = 4096;
constexpr std::uint64_t kMaxDim = 1u << 20;
constexpr std::uint64_t kMaxCodes = 1u << 24;
// A PCA sample of at most one item in this many is read item by item instead of in a pass over all
// items. Measured at 1M x 4 x 1024 from the page cache (docs/quantize.md): 100k single-item reads
// cost about twice a whole sequential pass, so the break-even is near 1 in 20.
constexpr std::int64_t kSparseSampleRatio = 32;

double seconds_since(std::chrono::steady_clock::time_point t0) {
  return std::chrono::duration<double>(std::chrono::steady_clock::now() - t0).count();
}

// f(0), ..., f(count - 1), the positions of a chunk: with several, one position per OpenMP thread on
// a single-threaded BLAS (OpenBLAS's threads would take turns with OpenMP's on 2 cores, and gain
// less on the covariance's symmetric product than on sgemm); each position's own sums are in the
// same order either way. The first exception is rethrown here (none may leave an OpenMP region).
template <class F>
void for_each_position(std::int64_t count, const F& f) {
  if (count < 2) {
    if (count == 1) f(0);
    return;
  }
  const ScopedBlasThreads one_blas_thread(1);
  std::exception_ptr error;
#pragma omp parallel for schedule(dynamic, 1)
  for (std::int64_t p = 0; p < count; ++p) {
    try {
      f(p);
    } catch (...) {
#pragma omp critical(lamia_for_each_position)
      if (!error) error = std::current_exception();
    }
  }
  if (error) std::rethrow_exception(error);
}

// Items [begin, end) of the source, checked, contiguous.
torch::Tensor read_range(const PaletteSource& source, std::int64_t begin, std::int64_t end, const char* what) {
  if (!source.read) throw ValueError(fmt::format("{}: the palette source has no read function", what));
  const auto x = source.read(begin, end);
  if (!x.defined() || x.dim() != 3 || x.size(0) != end - begin || x.size(1) != source.num_positions ||
      x.size(2) != source.dim || x.scalar_type() != torch::kFloat32 || !x.device().is_cpu()) {
    throw ValueError(fmt::format("{}: the source returned {} for items [{}, {}), expected a [{}, {}, {}] float32 CPU "
                                 "tensor",
                                 what, x.defined() ? c10::str(x.sizes(), " ", x.toString()) : std::string("nothing"), begin,
                                 end, end - begin, source.num_positions, source.dim));
  }
  return x.contiguous();
}

// Items [begin, begin + chunk_items) of the source.
torch::Tensor read_chunk(const PaletteSource& source, std::int64_t begin, const char* what) {
  if (source.chunk_items < 1) {
    throw ValueError(fmt::format("{}: chunk_items must be >= 1, got {}", what, source.chunk_items));
  }
  return read_range(source, begin, std::min(source.num_items, begin + source.chunk_items), what);
}
}  // namespace

PaletteSource PaletteSource::from_tensor(const torch::Tensor& palettes) {
  auto x = detail::checked_float_tensor(palettes, 3, "PaletteSource::from_tensor: palettes", "n x L x D");
  PaletteSource s;
  s.num_items = x.size(0);
  s.num_positions = x.size(1);
  s.dim = x.size(2);
  s.read = [x](std::int64_t begin, std::int64_t end) { return x.narrow(0, begin, end - begin); };
  return s;
}

PaletteSource PaletteSource::from_pointer(const float* palettes, std::int64_t n, std::int64_t L, std::int64_t D) {
  PaletteSource s;
  s.num_items = n;
  s.num_positions = L;
  s.dim = D;
  s.read = [palettes, L, D](std::int64_t begin, std::int64_t end) {
    return torch::from_blob(const_cast<float*>(palettes) + begin * L * D, {end - begin, L, D}, torch::kFloat32);
  };
  return s;
}

PaletteQuantizer::PaletteQuantizer(PaletteQuantizerOptions options) : options_(options) {
  if (options_.kmeans.num_codes < 1 || static_cast<std::uint64_t>(options_.kmeans.num_codes) > kMaxCodes) {
    throw ValueError(fmt::format("PaletteQuantizer: num_codes (k) must be 1 to {}, got {}", kMaxCodes,
                                 options_.kmeans.num_codes));
  }
  if (!options_.no_pca && options_.pca_dim < 1) {
    throw ValueError(fmt::format("PaletteQuantizer: pca_dim (d) must be >= 1, got {}", options_.pca_dim));
  }
  if (options_.kmeans.iterations < 1) {
    throw ValueError(fmt::format("PaletteQuantizer: iterations must be >= 1, got {}", options_.kmeans.iterations));
  }
  if (options_.kmeans.restarts < 1) {
    throw ValueError(fmt::format("PaletteQuantizer: restarts must be >= 1, got {}", options_.kmeans.restarts));
  }
  if (options_.shared_pca && options_.no_pca) {
    throw ValueError("PaletteQuantizer: shared_pca and no_pca exclude each other");
  }
}

std::vector<std::int64_t> PaletteQuantizer::codebook_sizes() const { return num_codes_; }

void PaletteQuantizer::check_fitted(const char* what) const {
  if (!fitted()) throw ValueError(fmt::format("PaletteQuantizer::{}: the quantizer is not fitted", what));
}

void PaletteQuantizer::check_position(std::int64_t position) const {
  if (position < 0 || position >= num_positions_) {
    throw IndexError(fmt::format("PaletteQuantizer: position {} out of range (0 to {})", position,
                                 num_positions_ - 1));
  }
}

PaletteFitReport PaletteQuantizer::fit(const torch::Tensor& palettes) {
  auto x = detail::checked_float_tensor(palettes, 3, "PaletteQuantizer::fit: palettes", "n x L x D");
  return fit(PaletteSource::from_tensor(x));
}

PaletteFitReport PaletteQuantizer::fit(const float* data, std::int64_t n, std::int64_t L, std::int64_t D) {
  return fit(PaletteSource::from_pointer(data, n, L, D));
}

PaletteFitReport PaletteQuantizer::fit(const PaletteSource& source) {
  const auto t0 = std::chrono::steady_clock::now();
  const std::int64_t n = source.num_items, L = source.num_positions, D = source.dim;
  if (n < 1 || L < 1 || D < 1) {
    throw ValueError(fmt::format("PaletteQuantizer::fit: palettes must be non-empty (n x L x D), got {} x {} x {}", n,
                                 L, D));
  }
  if (static_cast<std::uint64_t>(L) > kMaxPositions || static_cast<std::uint64_t>(D) > kMaxDim) {
    throw ValueError(fmt::format("PaletteQuantizer::fit: at most {} positions of dimension {}, got L = {}, D = {}",
                                 kMaxPositions, kMaxDim, L, D));
  }
  const std::int64_t d = options_.no_pca ? D : options_.pca_dim;
  if (d > D) {
    throw ValueError(fmt::format("PaletteQuantizer::fit: pca_dim (d) must be <= the palette dimension D = {}, got {}",
                                 D, d));
  }
  std::int64_t k = options_.kmeans.num_codes;
  if (n < k) {
    if (!options_.reduce_k_when_few_items) {
      throw ValueError(fmt::format("PaletteQuantizer::fit: needs at least num_codes = {} items, got {} (set "
                                   "reduce_k_when_few_items to use k = number of items)",
                                   k, n));
    }
    k = n;
  }
  if (!options_.no_pca && n < 2) throw ValueError("PaletteQuantizer::fit: PCA needs at least 2 items, got 1");
  if (source.chunk_items < 1) {
    throw ValueError(fmt::format("PaletteQuantizer::fit: chunk_items must be >= 1, got {}", source.chunk_items));
  }

  // Passes over the source, one chunk in memory at a time: the NaN/inf check with the means and the
  // exact solver's covariances (or the randomized solver's passes after it), the projections. With
  // a PCA sample (pca.max_items < n) the PCA's passes go over the sample in memory: the source is passed over
  // twice (the check with the sample's copy, the projections), or, for a sparse sample (at most
  // one item in kSparseSampleRatio), once after reading the sampled items alone. Only the
  // n x L x d projections are kept (and the sample, pca.max_items x L x D).
  using Clock = std::chrono::steady_clock;
  std::map<std::string, double> phases;
  const auto for_each_chunk = [&](const PaletteSource& src, const char* phase, const auto& f) {
    for (std::int64_t b = 0; b < src.num_items; b += src.chunk_items) {
      auto t = Clock::now();
      const auto x = read_chunk(src, b, "PaletteQuantizer::fit");
      phases["read"] += seconds_since(t);
      t = Clock::now();
      f(b, x);
      if (phase) phases[phase] += seconds_since(t);  // (nullptr: f times itself)
    }
  };
  const std::int64_t num_pcas = options_.no_pca ? 0 : (options_.shared_pca ? 1 : L);
  std::vector<detail::PcaAccumulator> acc;  // one each: copies would share their tensors
  for (std::int64_t p = 0; p < num_pcas; ++p) acc.emplace_back(D);
  const auto rows_of = [&](const torch::Tensor& x, std::int64_t p) {
    return options_.shared_pca ? x.view({x.size(0) * L, D}) : x.select(1, p);
  };
  // The PCA's items: all of them, or a seeded sample (sorted item indices) copied out of the source.
  const PcaOptions& po = options_.pca;
  // The exact solver's covariance is accumulated in the means' pass (PcaAccumulator merges chunks
  // centred on their own means): one pass over the items fewer than the mean first.
  const bool exact = num_pcas > 0 && po.solver == PcaSolver::kExact;
  const auto add_to_pca = [&](const torch::Tensor& x) {
    auto t = Clock::now();
    for (std::int64_t p = 0; p < num_pcas; ++p) acc[p].add_to_mean(rows_of(x, p));
    phases["check_and_mean"] += seconds_since(t);
    if (!exact) return;
    t = Clock::now();
    for_each_position(num_pcas, [&](std::int64_t p) { acc[p].add_to_covariance(rows_of(x, p)); });
    phases["covariance"] += seconds_since(t);
  };
  const bool sampled = num_pcas > 0 && po.max_items > 0 && po.max_items < n;
  torch::Tensor sample;
  bool checked = false;  // every item already checked for NaN and inf
  if (sampled) {
    if (po.max_items < 2) throw ValueError("PaletteQuantizer::fit: pca.max_items must be 0 or >= 2");
    std::mt19937_64 rng(po.random_state);
    const auto picks = detail::sample_indices(n, po.max_items, rng);
    sample = torch::empty({po.max_items, L, D}, torch::kFloat32);
    float* dst = sample.data_ptr<float>();
    const std::size_t item_bytes = static_cast<std::size_t>(L * D) * sizeof(float);
    if (po.max_items * kSparseSampleRatio <= n) {
      // A sparse sample: the sampled items alone, in runs of consecutive items (a pass over all
      // items would read at least kSparseSampleRatio times more); every item is checked later,
      // in the projections' pass.
      for (std::size_t i = 0; i < picks.size();) {
        std::size_t e = i + 1;
        while (e < picks.size() && picks[e] == picks[e - 1] + 1 && static_cast<std::int64_t>(e - i) < source.chunk_items) ++e;
        auto t = Clock::now();
        const auto x = read_range(source, picks[i], picks[i] + static_cast<std::int64_t>(e - i), "PaletteQuantizer::fit");
        phases["read"] += seconds_since(t);
        t = Clock::now();
        check_finite(x.data_ptr<float>(), x.size(0) * L, D, "PaletteQuantizer::fit: palettes", L, picks[i]);
        std::memcpy(dst + i * L * D, x.data_ptr<float>(), (e - i) * item_bytes);
        phases["check_and_sample"] += seconds_since(t);
        i = e;
      }
    } else {
      // A dense sample: one pass over all items, checked, the sampled ones copied out.
      std::size_t next = 0;
      for_each_chunk(source, "check_and_sample", [&](std::int64_t b, const torch::Tensor& x) {
        check_finite(x.data_ptr<float>(), x.size(0) * L, D, "PaletteQuantizer::fit: palettes", L, b);
        const float* src = x.data_ptr<float>();
        for (; next < picks.size() && picks[next] < b + x.size(0); ++next)
          std::memcpy(dst + next * L * D, src + (picks[next] - b) * L * D, item_bytes);
      });
      checked = true;
    }
  } else {
    for_each_chunk(source, nullptr, [&](std::int64_t b, const torch::Tensor& x) {
      const auto t = Clock::now();
      check_finite(x.data_ptr<float>(), x.size(0) * L, D, "PaletteQuantizer::fit: palettes", L, b);
      phases["check_and_mean"] += seconds_since(t);
      add_to_pca(x);
    });
    checked = true;
  }
  PaletteSource pca_source = source;
  if (sampled) {
    pca_source = PaletteSource::from_tensor(sample);
    pca_source.chunk_items = source.chunk_items;
    for_each_chunk(pca_source, nullptr, [&](std::int64_t, const torch::Tensor& x) { add_to_pca(x); });
  }
  std::vector<Pca> pcas;
  if (exact) {
    const auto t = Clock::now();
    for (const auto& a : acc) pcas.push_back(a.finish(d));
    phases["eigenpairs"] += seconds_since(t);
  } else if (num_pcas > 0) {
    std::vector<detail::RandomizedPcaAccumulator> rnd;
    for (std::int64_t p = 0; p < num_pcas; ++p)
      rnd.emplace_back(acc[p], d, po, po.random_state + 1000003ull * static_cast<std::uint64_t>(p));
    while (rnd[0].passes_left() > 0) {
      for_each_chunk(pca_source, "power_iterations", [&](std::int64_t, const torch::Tensor& x) {
        for (std::int64_t p = 0; p < num_pcas; ++p) rnd[p].add(rows_of(x, p));
      });
      for (auto& r : rnd) r.end_pass();
    }
    const auto t = Clock::now();
    for (const auto& r : rnd) pcas.push_back(r.finish());
    phases["eigenpairs"] += seconds_since(t);
  }
  sample = torch::Tensor();
  const auto pca_of = [&](std::int64_t j) -> const Pca* {
    return options_.no_pca ? nullptr : &pcas[options_.shared_pca ? 0 : j];
  };
  std::vector<torch::Tensor> reduced(L);
  for (auto& r : reduced) r = torch::empty({n, d}, torch::kFloat32);
  // The projections (with the NaN/inf check of every item after a sparse sample).
  for_each_chunk(source, "projection", [&](std::int64_t b, const torch::Tensor& x) {
    if (!checked) check_finite(x.data_ptr<float>(), x.size(0) * L, D, "PaletteQuantizer::fit: palettes", L, b);
    for_each_position(L, [&](std::int64_t j) {
      const Pca* pca = pca_of(j);
      reduced[j].narrow(0, b, x.size(0)).copy_(pca ? detail::pca_transform(*pca, x.select(1, j)) : x.select(1, j));
    });
  });

  PaletteFitReport report;
  report.num_items = n;
  report.num_positions = L;
  report.input_dim = D;
  report.reduced_dim = d;
  report.pca_items = num_pcas == 0 ? 0 : (sampled ? po.max_items : n);
  std::vector<std::vector<float>> centroids(L);
  std::vector<std::int32_t> codes(n * L);
  std::vector<std::int64_t> ks(L, k);
  for (std::int64_t j = 0; j < L; ++j) {
    const Pca* pca = pca_of(j);
    KMeansOptions ko = options_.kmeans;
    ko.num_codes = k;
    ko.seed = options_.kmeans.seed + 1000003ull * static_cast<std::uint64_t>(j);
    KMeansResult km = kmeans(reduced[j].data_ptr<float>(), n, d, ko);
    reduced[j] = torch::Tensor();  // free as we go
    phases["kmeans_seeding"] += km.seconds_seeding;
    phases["kmeans_iterations"] += km.seconds_iterations;
    phases["kmeans_assignment"] += km.seconds_assignment;
    PositionFitReport pr;
    pr.num_codes = k;
    pr.objective = std::move(km.objective);
    pr.best_restart = km.best_restart;
    pr.inertia = km.inertia;
    if (pca) {
      pr.explained_variance_ratio = pca->explained_variance_ratio();
      pr.explained_variance_ratio_total =
          std::accumulate(pr.explained_variance_ratio.begin(), pr.explained_variance_ratio.end(), 0.0);
    }
    std::vector<char> used(k, 0);
    for (std::int64_t i = 0; i < n; ++i) {
      codes[i * L + j] = km.assignment[i];
      used[km.assignment[i]] = 1;
    }
    pr.used_codes = std::count(used.begin(), used.end(), 1);
    pr.kmeans_fit_points = km.fit_points;
    centroids[j] = std::move(km.centroids);
    report.positions.push_back(std::move(pr));
  }
  // Commit only after everything succeeded.
  num_positions_ = L;
  input_dim_ = D;
  reduced_dim_ = d;
  pcas_ = std::move(pcas);
  centroids_ = std::move(centroids);
  num_codes_ = std::move(ks);
  training_codes_ = std::move(codes);
  num_training_items_ = n;
  const auto t_table = Clock::now();
  report.num_colliding_items = table().num_colliding_items();
  phases["table"] = seconds_since(t_table);
  report.seconds = seconds_since(t0);
  report.phase_seconds = std::move(phases);
  report_ = report;
  return report;
}

torch::Tensor PaletteQuantizer::encode(const torch::Tensor& palettes) const {
  auto x = detail::checked_float_tensor(palettes, 3, "PaletteQuantizer::encode: palettes", "m x L x D");
  return encode(PaletteSource::from_tensor(x));
}

void PaletteQuantizer::encode(const float* data, std::int64_t m, std::int64_t L, std::int64_t D,
                              std::int32_t* codes) const {
  encode_into(PaletteSource::from_pointer(data, m, L, D), codes);
}

torch::Tensor PaletteQuantizer::encode(const PaletteSource& source) const {
  auto codes = torch::empty({std::max<std::int64_t>(source.num_items, 0), source.num_positions}, torch::kInt32);
  encode_into(source, codes.data_ptr<std::int32_t>());
  return codes.to(torch::kInt64);
}

void PaletteQuantizer::encode_into(const PaletteSource& source, std::int32_t* codes) const {
  check_fitted("encode");
  const std::int64_t m = source.num_items, L = source.num_positions, D = source.dim;
  if (L != num_positions_ || D != input_dim_) {
    throw ValueError(fmt::format("PaletteQuantizer::encode: palettes must be m x {} x {} (as fitted), got {} x {} x {}",
                                 num_positions_, input_dim_, m, L, D));
  }
  if (m < 0) throw ValueError(fmt::format("PaletteQuantizer::encode: num_items must be >= 0, got {}", m));
  std::vector<std::int32_t> col;
  for (std::int64_t b = 0; b < m; b += source.chunk_items) {
    const auto x = read_chunk(source, b, "PaletteQuantizer::encode");
    const std::int64_t c = x.size(0);
    check_finite(x.data_ptr<float>(), c * L, D, "PaletteQuantizer::encode: palettes", L, b);
    col.resize(c);
    for (std::int64_t j = 0; j < L; ++j) {
      torch::Tensor reduced = options_.no_pca ? x.select(1, j).contiguous()
                                              : detail::pca_transform(pcas_[options_.shared_pca ? 0 : j], x.select(1, j));
      assign_nearest(centroids_[j].data(), num_codes_[j], reduced_dim_, reduced.data_ptr<float>(), c, col.data());
      for (std::int64_t i = 0; i < c; ++i) codes[(b + i) * L + j] = col[i];
    }
  }
}

torch::Tensor PaletteQuantizer::training_codes() const {
  check_fitted("training_codes");
  if (training_codes_.empty()) {
    throw ValueError("PaletteQuantizer::training_codes: a loaded quantizer keeps no training codes; use encode()");
  }
  return torch::from_blob(const_cast<std::int32_t*>(training_codes_.data()), {num_training_items_, num_positions_},
                          torch::kInt32)
      .to(torch::kInt64);
}

SemanticIdTable PaletteQuantizer::table() const {
  check_fitted("table");
  if (training_codes_.empty()) {
    throw ValueError("PaletteQuantizer::table: a loaded quantizer keeps no training codes; use "
                     "SemanticIdTable::from_codes(encode(palettes), codebook_sizes())");
  }
  return SemanticIdTable::from_codes(training_codes_.data(), num_training_items_, num_positions_, num_codes_);
}

const Pca& PaletteQuantizer::pca(std::int64_t position) const {
  check_fitted("pca");
  check_position(position);
  if (options_.no_pca) throw ValueError("PaletteQuantizer::pca: the quantizer was fitted with no_pca");
  return pcas_[options_.shared_pca ? 0 : position];
}

torch::Tensor PaletteQuantizer::centroids(std::int64_t position) const {
  check_fitted("centroids");
  check_position(position);
  return torch::from_blob(const_cast<float*>(centroids_[position].data()), {num_codes_[position], reduced_dim_},
                          torch::kFloat32)
      .clone();
}

void PaletteQuantizer::save(const std::filesystem::path& path) const {
  check_fitted("save");
  detail::BinaryWriter w;
  w.put_bytes(std::string_view(kQuantizerMagic, 8));
  w.put<std::uint32_t>(kFormatVersion);
  w.put<std::uint32_t>(static_cast<std::uint32_t>(num_positions_));
  w.put<std::uint64_t>(static_cast<std::uint64_t>(input_dim_));
  w.put<std::uint64_t>(static_cast<std::uint64_t>(reduced_dim_));
  const std::uint8_t flags = (options_.shared_pca ? 1 : 0) | (options_.no_pca ? 2 : 0) |
                             (options_.reduce_k_when_few_items ? 4 : 0) |
                             (options_.kmeans.init == KMeansInit::kRandom ? 8 : 0) |
                             (options_.pca.solver == PcaSolver::kRandomized ? 16 : 0);
  w.put<std::uint8_t>(flags);
  w.put<std::int64_t>(options_.pca_dim);
  w.put<std::int64_t>(options_.kmeans.num_codes);
  w.put<std::int32_t>(options_.kmeans.iterations);
  w.put<std::int32_t>(options_.kmeans.restarts);
  w.put<std::uint64_t>(options_.kmeans.seed);
  w.put<std::int64_t>(options_.kmeans.max_points_per_centroid);
  w.put<std::uint64_t>(pcas_.size());
  for (auto k : num_codes_) w.put<std::uint64_t>(static_cast<std::uint64_t>(k));
  for (const auto& p : pcas_) {
    w.put_array(p.mean.data(), p.mean.size());
    w.put_array(p.components.data(), p.components.size());
    w.put_array(p.explained_variance.data(), p.explained_variance.size());
    w.put<double>(p.total_variance);
  }
  for (const auto& c : centroids_) w.put_array(c.data(), c.size());
  w.put_checksum();
  write_file_atomically(path, [&](std::ostream& out) { out.write(w.bytes().data(), w.bytes().size()); });
}

PaletteQuantizer PaletteQuantizer::load(const std::filesystem::path& path) {
  detail::BinaryReader r(path);
  r.expect_header(std::string_view(kQuantizerMagic, 8), "lamia palette quantizer", kFormatVersion);
  const auto L = r.get<std::uint32_t>("num_positions");
  if (L < 1 || L > kMaxPositions) {
    r.fail(fmt::format("field 'num_positions' is {}, expected 1 to {}", L, kMaxPositions));
  }
  const auto D = r.get_size("input_dim", 1, kMaxDim);
  const auto d = r.get_size("reduced_dim", 1, D);
  PaletteQuantizerOptions o;
  const auto flags = r.get<std::uint8_t>("flags");
  if (flags > 31) r.fail(fmt::format("field 'flags' is {}, expected 0 to 31", flags));
  o.shared_pca = flags & 1;
  o.no_pca = flags & 2;
  o.reduce_k_when_few_items = flags & 4;
  o.kmeans.init = (flags & 8) ? KMeansInit::kRandom : KMeansInit::kPlusPlus;
  o.pca.solver = (flags & 16) ? PcaSolver::kRandomized : PcaSolver::kExact;
  o.pca_dim = r.get<std::int64_t>("pca_dim");
  o.kmeans.num_codes = r.get<std::int64_t>("num_codes");
  o.kmeans.iterations = r.get<std::int32_t>("iterations");
  o.kmeans.restarts = r.get<std::int32_t>("restarts");
  o.kmeans.seed = r.get<std::uint64_t>("seed");
  o.kmeans.max_points_per_centroid = r.get<std::int64_t>("max_points_per_centroid");
  const std::uint64_t expected_pcas = o.no_pca ? 0 : (o.shared_pca ? 1 : L);
  const auto num_pcas = r.get_size("num_pcas", expected_pcas, expected_pcas);
  if (o.no_pca ? d != D : static_cast<std::int64_t>(d) != o.pca_dim) {
    r.fail(fmt::format("inconsistent sizes: reduced_dim is {}, but the options say {}", d,
                       o.no_pca ? static_cast<std::int64_t>(D) : o.pca_dim));
  }
  std::vector<std::int64_t> ks(L);
  std::uint64_t payload = num_pcas * (D * 4 + d * D * 4 + d * 8 + 8);
  for (std::uint32_t j = 0; j < L; ++j) {
    ks[j] = static_cast<std::int64_t>(r.get_size("num_codes_per_position", 1, kMaxCodes));
    payload += static_cast<std::uint64_t>(ks[j]) * d * 4;
  }
  r.expect_remaining(payload, fmt::format("{} PCAs and {} codebooks of dimension {}", num_pcas, L, d));
  r.verify_checksum();
  PaletteQuantizer q;  // default options pass the constructor checks; replaced below
  q.options_ = o;
  q.num_positions_ = L;
  q.input_dim_ = static_cast<std::int64_t>(D);
  q.reduced_dim_ = static_cast<std::int64_t>(d);
  q.num_codes_ = ks;
  for (std::uint64_t p = 0; p < num_pcas; ++p) {
    Pca pca;
    pca.input_dim = static_cast<std::int64_t>(D);
    pca.output_dim = static_cast<std::int64_t>(d);
    pca.mean = r.get_vector<float>(D, "pca.mean");
    pca.components = r.get_vector<float>(d * D, "pca.components");
    pca.explained_variance = r.get_vector<double>(d, "pca.explained_variance");
    pca.total_variance = r.get<double>("pca.total_variance");
    q.pcas_.push_back(std::move(pca));
  }
  for (std::uint32_t j = 0; j < L; ++j) {
    q.centroids_.push_back(r.get_vector<float>(static_cast<std::uint64_t>(ks[j]) * d, "centroids"));
  }
  r.expect_end();
  return q;
}

}  // namespace lamia
