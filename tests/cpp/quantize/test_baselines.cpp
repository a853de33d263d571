// Baselines: residual K-Means, RQ-VAE, TF-IDF + SVD embeddings; diagnostics.
#include <lamia/core/errors.hpp>
#include <lamia/data/catalog.hpp>
#include <lamia/quantize/diagnostics.hpp>
#include <lamia/quantize/residual_kmeans.hpp>
#include <lamia/quantize/rq_vae.hpp>
#include <lamia/quantize/text_embedding.hpp>

#include <catch2/catch.hpp>

#include "cuda_guard.hpp"
#include "temp_dir.hpp"
#include "quantize/quantize_test_util.hpp"

using Catch::Matchers::Contains;

TEST_CASE("residual k-means: each level lowers the residual, codes reproduce", "[residual_kmeans]") {
  auto data = lamia::test::clustered_palettes(300, 1, 12, 8, 2, 0.3);
  auto x = data.x.select(1, 0).contiguous();
  lamia::ResidualKMeansOptions o;
  o.num_levels = 3;
  o.kmeans.num_codes = 8;
  o.kmeans.seed = 1;
  lamia::ResidualKMeans rk(o);
  auto report = rk.fit(x);
  REQUIRE(report.residual_mse.size() == 3);
  CHECK(report.residual_mse[1] < report.residual_mse[0]);
  CHECK(report.residual_mse[2] < report.residual_mse[1]);
  CHECK(torch::equal(rk.encode(x), rk.training_codes()));
  auto t = rk.table();
  CHECK(t.num_items() == 300);
  CHECK(t.id_length() == 4);
  // Reconstruction error of the codes equals the reported final residual.
  auto err = (rk.reconstruct(rk.training_codes()) - x).pow(2).sum(1).mean().item<double>();
  CHECK(err == Approx(report.residual_mse[2]).epsilon(1e-3));
  CHECK(lamia::residual_kmeans(x, o) == t);  // deterministic
  REQUIRE_THROWS_WITH(rk.encode(torch::randn({3, 5})), Contains("dimension 12 (as fitted), got 5"));
}

TEST_CASE("rq-vae: reconstruction loss falls, codes are used, collisions resolved", "[rq_vae]") {
  auto data = lamia::test::clustered_palettes(512, 1, 32, 16, 7, 0.2);
  auto x = data.x.select(1, 0).contiguous();
  lamia::RqVae model(lamia::RqVaeOptions(32).hidden_dims({64, 32}).latent_dim(8).num_levels(2).num_codes(16).seed(3));
  lamia::RqVaeTrainOptions to;
  to.batch_size = 128;
  to.max_epochs = 40;
  to.learning_rate = 3e-3;
  to.seed = 5;
  auto report = lamia::train_rq_vae(model, x, to);
  REQUIRE(report.reconstruction_loss.size() >= 5);
  CHECK(report.reconstruction_loss.back() < 0.5 * report.reconstruction_loss.front());
  REQUIRE(report.utilization.size() == 2);
  CHECK(report.utilization[0] >= 0.75);  // 16 clusters, 16 codes: not collapsed
  CHECK(report.utilization[1] >= 0.5);
  auto codes = model->encode(x);
  CHECK(codes.sizes() == torch::IntArrayRef({512, 2}));
  auto t = lamia::SemanticIdTable::from_codes(codes, model->codebook_sizes());
  for (int i = 0; i < 512; i += 37) CHECK(t.item(t.id(i)) == i);
  auto d = lamia::diagnose_table(t);
  CHECK(d["positions"][0]["used_codes"].get<std::int64_t>() >= 12);

  // Same seeds -> same model and codes.
  lamia::RqVae again(lamia::RqVaeOptions(32).hidden_dims({64, 32}).latent_dim(8).num_levels(2).num_codes(16).seed(3));
  lamia::train_rq_vae(again, x, to);
  CHECK(torch::equal(again->encode(x), codes));
  REQUIRE_THROWS_AS(model->encode(torch::randn({4, 31})), lamia::ValueError);
}

TEST_CASE("rq-vae: a run continued from its checkpoint equals an uninterrupted one", "[rq_vae]") {
  // RQ-VAE trains on the shared training loop: its checkpoint (weights, Adam, early stopping) at an
  // epoch end, plus the task's replayed shuffles, continue bit for bit on the CPU.
  auto data = lamia::test::clustered_palettes(300, 1, 16, 8, 4, 0.2);
  auto x = data.x.select(1, 0).contiguous();
  const auto mo = lamia::RqVaeOptions(16).hidden_dims({32}).latent_dim(8).num_levels(2).num_codes(8).seed(2);
  lamia::RqVaeTrainOptions to;
  to.batch_size = 64;
  to.max_epochs = 6;
  to.patience = 100;
  to.dead_code_reset_every = 0;  // a reset's condition (epoch < max_epochs) depends on max_epochs
  to.seed = 9;
  lamia::RqVae straight(mo);
  const auto full = lamia::train_rq_vae(straight, x, to);
  lamia::testing::TempDir dir;
  to.checkpoint_path = (dir.path / "rq.ckpt").string();
  to.max_epochs = 3;
  lamia::RqVae resumed(mo);
  const auto first = lamia::train_rq_vae(resumed, x, to);
  CHECK(first.epochs == 3);
  to.max_epochs = 6;
  lamia::RqVae fresh(mo);  // a new process: the weights come from the checkpoint
  const auto rest = lamia::train_rq_vae(fresh, x, to);
  CHECK(rest.epochs == 6);
  REQUIRE(rest.reconstruction_loss.size() == 3);
  CHECK(rest.reconstruction_loss.back() == full.reconstruction_loss.back());
  auto a = straight->parameters(), b = fresh->parameters();
  REQUIRE(a.size() == b.size());
  for (std::size_t i = 0; i < a.size(); ++i) CHECK(torch::equal(a[i], b[i]));
  CHECK(torch::equal(straight->encode(x), fresh->encode(x)));
}

TEST_CASE("rq-vae trains on CUDA like on the CPU", "[rq_vae][cuda]") {
  LAMIA_REQUIRE_CUDA();
  auto data = lamia::test::clustered_palettes(512, 1, 32, 16, 7, 0.2);
  auto x = data.x.select(1, 0).contiguous();
  auto options = lamia::RqVaeOptions(32).hidden_dims({64, 32}).latent_dim(8).num_levels(2).num_codes(16).seed(3);
  lamia::RqVaeTrainOptions to;
  to.batch_size = 128;
  to.max_epochs = 25;
  to.learning_rate = 3e-3;
  to.seed = 5;
  lamia::RqVae on_cpu(options), on_device(options);
  const auto cpu = lamia::train_rq_vae(on_cpu, x, to);
  to.device = lamia::testing::cuda_test_device();
  const auto dev = lamia::train_rq_vae(on_device, x, to);
  // The model comes back to the CPU, trained: losses fall as on the CPU (not bit-equal: other kernels).
  for (const auto& p : on_device->parameters()) CHECK(p.device().is_cpu());
  REQUIRE(dev.reconstruction_loss.size() >= 5);
  CHECK(dev.reconstruction_loss.back() < 0.5 * dev.reconstruction_loss.front());
  CHECK(dev.reconstruction_loss.back() < 1.5 * cpu.reconstruction_loss.back());
  CHECK(dev.utilization[0] >= 0.75);
  CHECK(on_device->encode(x).sizes() == torch::IntArrayRef({512, 2}));
}

TEST_CASE("tf-idf + svd: similar texts get similar embeddings", "[text_embedding]") {
  CHECK(lamia::tokenize_words("Hello, World! a x2 C++ naïve") ==
        std::vector<std::string>{"hello", "world", "x2", "naïve"});
  lamia::Catalog catalog({"title", "genre"});
  const char* genres[] = {"rock guitar band", "jazz piano trio", "classical orchestra symphony"};
  for (int i = 0; i < 30; ++i) {
    catalog.add("item" + std::to_string(i), {"Album number " + std::to_string(i), genres[i % 3]});
  }
  lamia::TfidfSvdOptions o;
  o.dim = 3;
  auto r = lamia::tfidf_svd_embeddings(catalog, o);
  REQUIRE(r.embeddings.sizes() == torch::IntArrayRef({30, 3}));
  CHECK(std::is_sorted(r.singular_values.rbegin(), r.singular_values.rend()));
  auto e = torch::nn::functional::normalize(r.embeddings, torch::nn::functional::NormalizeFuncOptions().dim(1));
  auto sim = torch::mm(e, e.t());
  CHECK(sim[0][3].item<float>() > sim[0][1].item<float>() + 0.3);
  o.dim = 100;
  REQUIRE_THROWS_WITH(lamia::tfidf_svd_embeddings(catalog, o), Contains("dim must be <= min(items, vocabulary)"));
}

TEST_CASE("diagnostics: utilisation, entropy, collisions and NMI", "[diagnostics]") {
  // Position 0 is a relabelling of position 1; position 2 is constant.
  auto codes = torch::tensor({{0, 3, 1}, {0, 3, 1}, {1, 2, 1}, {1, 2, 1}, {2, 0, 1}, {2, 0, 1}});
  auto labels = torch::tensor({{5, 1}, {5, 0}, {6, 1}, {6, 0}, {7, 1}, {7, 0}});
  auto d = lamia::diagnose_codes(codes, {4, 4, 4}, labels, {"genre", "mood"});
  CHECK(d["positions"][0]["used_codes"] == 3);
  CHECK(d["positions"][0]["utilization"].get<double>() == Approx(0.75));
  CHECK(d["positions"][0]["entropy"].get<double>() == Approx(std::log(3.0)));
  CHECK(d["positions"][0]["perplexity"].get<double>() == Approx(3.0));
  CHECK(d["positions"][2]["largest_cluster_share"].get<double>() == Approx(1.0));
  CHECK(d["table"]["unique_codes"] == 3);
  CHECK(d["table"]["collision_rate"].get<double>() == Approx(0.5));
  CHECK(d["table"]["items_per_unique_prefix"].get<double>() == Approx(2.0));
  CHECK(d["nmi_between_positions"][0][1].get<double>() == Approx(1.0));
  CHECK(d["nmi_between_positions"][0][2].get<double>() == Approx(0.0));
  CHECK(d["nmi_with_labels"][0][0].get<double>() == Approx(1.0));
  CHECK(d["nmi_with_labels"][0][1].get<double>() == Approx(0.0).margin(1e-12));
  CHECK(d["label_names"][1] == "mood");
  // A value computed by sklearn.metrics.normalized_mutual_info_score([0,0,1,1,2,2],[0,1,0,1,1,1]).
  std::vector<std::int64_t> a{0, 0, 1, 1, 2, 2}, b{0, 1, 0, 1, 1, 1};
  CHECK(lamia::normalized_mutual_info(a.data(), b.data(), 6) == Approx(0.2010413099536331));
  REQUIRE_THROWS_WITH(lamia::diagnose_codes(codes, {4, 4, 4}, labels.narrow(0, 0, 5)),
                      Contains("one row per item (6), got 5"));
}
