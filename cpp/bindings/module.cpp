// The extension module convpool._core: one register_* function per kernel family.

#include <convpool/parallel.hpp>

#include "common.hpp"

namespace convpool::bindings {
void register_pooling(py::module_& m);
}

PYBIND11_MODULE(_core, m) {
  namespace py = pybind11;
  using convpool::bindings::concat;
  m.doc() = "convpool's compiled kernels; use the convpool package.";
  m.def(
      "set_num_threads",
      [](int n) {
        if (n < 1) throw py::value_error(concat("set_num_threads: n must be at least 1, got ", n));
        convpool::set_num_threads(n);
      },
      py::arg("n"), "Sets the number of threads every convpool kernel uses.");
  m.def("get_num_threads", &convpool::get_num_threads, "The number of threads convpool kernels use.");
  convpool::bindings::register_pooling(m);
}
