// The extension module convpool._core: one register_* function per kernel family.

#include <convpool/isa.hpp>
#include <convpool/parallel.hpp>

#include "common.hpp"
#include "docstrings.hpp"

namespace convpool::bindings {
void register_max_pool(py::module_& m);
void register_max_pool_backward(py::module_& m);
void register_max_unpool(py::module_& m);
void register_avg_pool(py::module_& m);
void register_lp_pool(py::module_& m);
void register_stochastic_pool(py::module_& m);
void register_conv(py::module_& m);
void register_activation(py::module_& m);
void register_batch_norm(py::module_& m);
void register_adaptive_avg_pool(py::module_& m);
void register_adaptive_max_pool(py::module_& m);
void register_fractional_max_pool(py::module_& m);
}  // namespace convpool::bindings

PYBIND11_MODULE(_core, m) {
  namespace py = pybind11;
  using convpool::bindings::concat;
  m.doc() = "convpool's compiled kernels; use the convpool package.";
  m.def(
      "set_num_threads",
      [](py::handle n) {
        const char* fn = "set_num_threads";
        if (!convpool::bindings::is_integer(n))
          throw py::type_error(concat(fn, ": n must be an int, got ", py::repr(n).cast<std::string>()));
        const int64_t threads = convpool::bindings::to_int64(n, fn, "n");
        const int most = convpool::max_threads();
        if (threads < 1 || threads > most)
          throw py::value_error(
              concat(fn, ": n=", threads, " must be between 1 and ", most, " (4 threads per core that OpenMP sees)"));
        convpool::set_num_threads(static_cast<int>(threads));
      },
      py::arg("n"), convpool::bindings::docs::set_num_threads);
  m.def("get_num_threads", &convpool::get_num_threads, convpool::bindings::docs::get_num_threads);
  m.def(
      "build_info",
      [] {
        py::dict info;
        info["compiler"] = __VERSION__;
        info["openmp"] = _OPENMP;
        info["isa"] = convpool::isa_name(convpool::active_isa());
        py::list isas;
        for (convpool::Isa isa : convpool::supported_isas()) isas.append(convpool::isa_name(isa));
        info["isas"] = isas;
        return info;
      },
      convpool::bindings::docs::build_info);
  convpool::bindings::register_max_pool(m);
  convpool::bindings::register_max_pool_backward(m);
  convpool::bindings::register_max_unpool(m);
  convpool::bindings::register_avg_pool(m);
  convpool::bindings::register_lp_pool(m);
  convpool::bindings::register_stochastic_pool(m);
  convpool::bindings::register_conv(m);
  convpool::bindings::register_activation(m);
  convpool::bindings::register_batch_norm(m);
  convpool::bindings::register_adaptive_avg_pool(m);
  convpool::bindings::register_adaptive_max_pool(m);
  convpool::bindings::register_fractional_max_pool(m);
}
