#pragma once
// Conversion and validation shared by the bindings. Every error is raised here, at the boundary,
// as ValueError/TypeError naming the function, the argument and the shapes; kernels only assert.

#include <pybind11/numpy.h>
#include <pybind11/pybind11.h>
#include <convpool/activation.hpp>
#include <convpool/shape.hpp>

#include <algorithm>
#include <cstdint>
#include <optional>
#include <set>
#include <sstream>
#include <string>
#include <utility>
#include <vector>

namespace convpool::bindings {

namespace py = pybind11;

template <typename T>
using CArray = py::array_t<T, py::array::c_style | py::array::forcecast>;

template <typename... Parts>
std::string concat(const Parts&... parts) {
  std::ostringstream out;
  (out << ... << parts);
  return out.str();
}

inline std::string shape_string(const std::vector<int64_t>& shape) {
  std::ostringstream out;
  out << "(";
  for (size_t i = 0; i < shape.size(); ++i) out << (i ? ", " : "") << shape[i];
  out << (shape.size() == 1 ? ",)" : ")");
  return out.str();
}

inline std::vector<int64_t> shape_of(const py::array& a) {
  return std::vector<int64_t>(a.shape(), a.shape() + a.ndim());
}

struct Pair {
  int64_t h, w;
  std::string str() const { return concat("(", h, ", ", w, ")"); }
};

// Whether obj is an integer: it converts through __index__, which is lossless (Python ints,
// NumPy integer scalars and 0-d integer arrays; not np.float32(2.7), which int() would truncate).
// bool is an int subclass in Python but never a sensible size.
inline bool is_integer(py::handle obj) {
  if (py::isinstance<py::bool_>(obj)) return false;
  const auto index = py::reinterpret_steal<py::object>(PyNumber_Index(obj.ptr()));
  if (!index) PyErr_Clear();
  return static_cast<bool>(index);
}

// obj, which is_integer accepted, as int64.
inline int64_t to_int64(py::handle obj, const char* fn, const char* name) {
  const auto index = py::reinterpret_steal<py::object>(PyNumber_Index(obj.ptr()));
  if (!index) throw py::error_already_set();
  int overflow = 0;
  const long long v = PyLong_AsLongLongAndOverflow(index.ptr(), &overflow);
  if (overflow)
    throw py::value_error(concat(fn, ": ", name, "=", py::repr(obj).cast<std::string>(), " is out of range"));
  return v;
}

// Whether obj is a sequence (not a string): a pair, or torch.nn.functional's other forms.
inline bool is_sequence(py::handle obj) { return py::isinstance<py::sequence>(obj) && !py::isinstance<py::str>(obj); }

// An int or a pair of ints, as PyTorch's _pair; a 1-element sequence is broadcast, as
// torch.nn.functional accepts (kernel_size=(3,)).
inline Pair to_pair(py::handle obj, const char* fn, const char* name) {
  if (is_integer(obj)) {
    const int64_t v = to_int64(obj, fn, name);
    return {v, v};
  }
  if (is_sequence(obj)) {
    const auto seq = py::reinterpret_borrow<py::sequence>(obj);
    if (seq.size() == 1 && is_integer(seq[0])) {
      const int64_t v = to_int64(seq[0], fn, name);
      return {v, v};
    }
    if (seq.size() == 2 && is_integer(seq[0]) && is_integer(seq[1]))
      return {to_int64(seq[0], fn, name), to_int64(seq[1], fn, name)};
  }
  throw py::type_error(
      concat(fn, ": ", name, " must be an int or a pair of ints, got ", py::repr(obj).cast<std::string>()));
}

enum class FloatType { f32, f64 };

// obj as a NumPy array (no copy when it is one). When NumPy cannot allocate the array it would
// make (a huge list, say), its MemoryError is raised as is; any other failure means obj is not
// array-like, and is reported as a TypeError.
inline py::array as_array(py::handle obj, const char* fn, const char* name, const char* what) {
  try {
    return py::array(py::reinterpret_borrow<py::object>(obj));
  } catch (py::error_already_set& error) {
    if (error.matches(PyExc_MemoryError)) throw;
    throw py::type_error(
        concat(fn, ": ", name, " must be ", what, ", got ", py::str(py::type::of(obj)).cast<std::string>()));
  }
}

// Accepts anything NumPy can turn into an array of float32 or float64 (any layout or byte
// order: it is made C-contiguous and native); refuses every other dtype.
inline std::pair<py::array, FloatType> to_float_array(py::handle obj, const char* fn, const char* name) {
  const py::array a = as_array(obj, fn, name, "a float32 or float64 array");
  const py::dtype dt = a.dtype();
  // The converting constructors raise NumPy's own error (MemoryError when the contiguous copy
  // cannot be allocated) instead of returning a null array.
  if (dt.kind() == 'f' && dt.itemsize() == 4) return {CArray<float>(a), FloatType::f32};
  if (dt.kind() == 'f' && dt.itemsize() == 8) return {CArray<double>(a), FloatType::f64};
  throw py::type_error(concat(fn, ": ", name, " must be float32 or float64, got ", py::str(dt).cast<std::string>(),
                              " with shape ", shape_string(shape_of(a))));
}

template <typename T>
const char* dtype_name() {
  return std::is_same_v<T, float> ? "float32" : "float64";
}

// An array that must have the same dtype as the primary input.
template <typename T>
CArray<T> to_matching_array(py::handle obj, const char* fn, const char* name, const char* like) {
  auto [a, type] = to_float_array(obj, fn, name);
  if ((type == FloatType::f32) != std::is_same_v<T, float>)
    throw py::type_error(
        concat(fn, ": ", name, " is ", py::str(a.dtype()).cast<std::string>(), " but ", like, " is ", dtype_name<T>()));
  return py::reinterpret_borrow<CArray<T>>(a);
}

inline CArray<int64_t> to_index_array(py::handle obj, const char* fn, const char* name) {
  const py::array a = as_array(obj, fn, name, "an int64 array");
  const py::dtype dt = a.dtype();
  if (dt.kind() != 'i' || dt.itemsize() != 8)
    throw py::type_error(concat(fn, ": ", name, " must be int64, got ", py::str(dt).cast<std::string>(), " with shape ",
                                shape_string(shape_of(a))));
  return CArray<int64_t>(a);
}

// Window sizes, strides and paddings beyond this are refused before any arithmetic on them
// could overflow.
constexpr int64_t kMaxWindowArgument = int64_t{1} << 31;

// An int or a pair of ints, each at least `min` (else "<name>=(h, w) must be <what>") and within
// kMaxWindowArgument.
inline Pair bounded_pair(const char* fn, py::handle obj, const char* name, int64_t min, const char* what) {
  const Pair v = to_pair(obj, fn, name);
  if (v.h < min || v.w < min) throw py::value_error(concat(fn, ": ", name, "=", v.str(), " must be ", what));
  if (v.h > kMaxWindowArgument || v.w > kMaxWindowArgument)
    throw py::value_error(concat(fn, ": ", name, "=", v.str(), " is too large"));
  return v;
}

// Calls f(float{}) or f(double{}): one kernel instantiation per dtype.
template <class F>
auto dispatch_float(FloatType type, F&& f) {
  return type == FloatType::f32 ? f(float{}) : f(double{});
}

inline void require_shape(const char* fn, const char* name, const py::array& a, const std::vector<int64_t>& expected,
                          const std::string& why) {
  if (shape_of(a) != expected)
    throw py::value_error(
        concat(fn, ": ", name, " has shape ", shape_string(shape_of(a)), " but ", why, " ", shape_string(expected)));
}

template <typename T>
const T* data_of(const py::array& a) {
  return static_cast<const T*>(a.data());
}

// The gradients a backward call is asked for (its `needs` argument).
struct Needs {
  bool input = false, weight = false, bias = false;
};

inline Needs parse_needs(const char* fn, py::handle needs) {
  const std::set<std::string> known{"input", "weight", "bias"};
  Needs n;
  auto bad = [&] {
    return py::value_error(concat(fn, ": needs must be a collection of 'input', 'weight' and 'bias', got ",
                                  py::repr(needs).cast<std::string>()));
  };
  if (py::isinstance<py::str>(needs) || !py::isinstance<py::iterable>(needs)) throw bad();
  for (py::handle item : needs) {
    if (!py::isinstance<py::str>(item)) throw bad();
    const auto name = item.cast<std::string>();
    if (!known.count(name)) throw bad();
    n.input |= name == "input";
    n.weight |= name == "weight";
    n.bias |= name == "bias";
  }
  return n;
}

// An `activation` argument: None or "relu"; anything else is a ValueError.
inline Activation parse_activation(const char* fn, py::handle activation) {
  if (activation.is_none()) return Activation::none;
  if (py::isinstance<py::str>(activation) && activation.cast<std::string>() == "relu") return Activation::relu;
  throw py::value_error(
      concat(fn, ": activation must be None or 'relu', got ", py::repr(activation).cast<std::string>()));
}

// The layout argument: "nchw" (the default) or "nhwc" (channels last: arrays (N, H, W, C)).
inline Layout parse_layout(const char* fn, py::handle layout) {
  if (py::isinstance<py::str>(layout)) {
    const auto text = layout.cast<std::string>();
    if (text == "nchw") return Layout::nchw;
    if (text == "nhwc") return Layout::nhwc;
  }
  throw py::value_error(concat(fn, ": layout must be 'nchw' or 'nhwc', got ", py::repr(layout).cast<std::string>()));
}

// The arrays a call writes its results into, NumPy's `out=`: None (new arrays), or for a call
// with one result an array, for several a tuple with an entry (an array, or None for a new one)
// per result. Each given array must be exactly the result's dtype and shape, writable and
// C-contiguous, and share no memory with the call's inputs or its other results; every check is
// made, with the GIL held, before any kernel runs. Arrays a call updates in place (batch norm's
// running statistics) are held to the same rule through updated_in_place.
class Outputs {
 public:
  Outputs(const char* fn, py::handle out, size_t count, std::vector<py::array> inputs)
      : fn_(fn), inputs_(std::move(inputs)) {
    if (out.is_none()) {
      given_.assign(count, py::none());
      return;
    }
    if (count == 1) {
      given_.push_back(py::reinterpret_borrow<py::object>(out));
      return;
    }
    if (!py::isinstance<py::tuple>(out) || py::len(out) != count)
      throw py::type_error(concat(fn, ": out must be None or a tuple of ", count, " arrays (or None), one per result"));
    for (py::handle entry : out) given_.push_back(py::reinterpret_borrow<py::object>(entry));
  }

  // An argument the call reads and then overwrites, named `name`: it must share no memory with the
  // inputs or with anything else the call writes.
  void updated_in_place(const char* name, const py::array& array) {
    for (const py::array& other : inputs_)
      if (overlap(array, other))
        throw py::value_error(concat(fn_, ": ", name,
                                     " is updated in place and shares memory with an input; give a "
                                     "separate array"));
    for (const auto& [other_name, other] : taken_)
      if (overlap(array, other))
        throw py::value_error(concat(fn_, ": ", name, " is updated in place and shares memory with ", other_name,
                                     "; give separate arrays"));
    taken_.emplace_back(name, array);
  }

  // Whether any result goes into an array the caller gave.
  bool any_given() const {
    return std::any_of(given_.begin(), given_.end(), [](const py::object& o) { return !o.is_none(); });
  }

  // Gradient `index`, named `name` in the call's needs: get(index, shape) when `asked`, else
  // nothing, and its out must be None.
  template <typename T>
  std::optional<py::array_t<T>> get_if(size_t index, bool asked, const char* name, const std::vector<int64_t>& shape) {
    if (asked) return get<T>(index, shape);
    if (!given_[index].is_none())
      throw py::value_error(
          concat(fn_, ": out[", index, "] is given but needs does not ask for '", name, "'; pass None there"));
    return std::nullopt;
  }

  // Result `index`: the caller's array, checked, or a new one of `shape`.
  template <typename T>
  py::array_t<T> get(size_t index, const std::vector<int64_t>& shape) {
    if (given_[index].is_none()) return py::array_t<T>(shape);
    const std::string name = given_.size() == 1 ? "out" : concat("out[", index, "]");
    const py::handle out = given_[index];
    if (!py::isinstance<py::array>(out))
      throw py::type_error(concat(fn_, ": ", name, " must be a NumPy array or None, got ",
                                  py::str(py::type::of(out)).cast<std::string>()));
    const auto array = py::reinterpret_borrow<py::array>(out);
    if (!py::isinstance<py::array_t<T>>(array))  // the same dtype, native byte order
      throw py::type_error(concat(fn_, ": ", name, " has dtype ", py::str(array.dtype()).cast<std::string>(),
                                  " but the result is ", py::str(py::dtype::of<T>()).cast<std::string>()));
    if (shape_of(array) != shape)
      throw py::value_error(concat(fn_, ": ", name, " has shape ", shape_string(shape_of(array)),
                                   " but the result has shape ", shape_string(shape)));
    if (!(array.flags() & py::array::c_style) || !array.writeable())
      throw py::value_error(concat(fn_, ": ", name, " must be a writable C-contiguous array"));
    for (const py::array& other : inputs_)
      if (overlap(array, other))
        throw py::value_error(concat(fn_, ": ", name, " shares memory with an input; give a separate array"));
    for (const auto& [other_name, other] : taken_)
      if (overlap(array, other))
        throw py::value_error(concat(fn_, ": ", name, " shares memory with ",
                                     other_name.rfind("out", 0) == 0 ? "another out" : other_name));
    taken_.emplace_back(name, array);
    return py::reinterpret_borrow<py::array_t<T>>(array);
  }

 private:
  // Whether the bytes two arrays span intersect (an input may be any view; a given out is
  // contiguous).
  static bool overlap(const py::array& a, const py::array& b) {
    if (a.size() == 0 || b.size() == 0) return false;
    const auto span = [](const py::array& x) {
      const char* low = static_cast<const char*>(x.data());
      const char* high = low + x.itemsize();
      for (py::ssize_t d = 0; d < x.ndim(); ++d) {
        const py::ssize_t reach = (x.shape(d) - 1) * x.strides(d);
        (reach < 0 ? low : high) += reach;
      }
      return std::pair<const char*, const char*>{low, high};
    };
    const auto [a_low, a_high] = span(a);
    const auto [b_low, b_high] = span(b);
    return a_low < b_high && b_low < a_high;
  }

  const char* fn_;
  std::vector<py::array> inputs_;
  std::vector<py::object> given_;
  std::vector<std::pair<std::string, py::array>> taken_;  // what the call writes, by name
};

// Result 0 of `outputs` (a new T array of `shape`, or the caller's), written by kernel(data) with
// the GIL released (the kernels never touch a Python object).
template <typename T, class Kernel>
py::array compute_array(Outputs&& outputs, const std::vector<int64_t>& shape, Kernel&& kernel) {
  py::array_t<T> result = outputs.get<T>(0, shape);
  T* data = result.mutable_data();
  {
    py::gil_scoped_release release;
    kernel(data);
  }
  return std::move(result);
}

// An optional result as a Python object: the array, or None.
template <typename T>
py::object array_or_none(std::optional<py::array_t<T>>& a) {
  if (a) return std::move(*a);
  return py::none();
}

}  // namespace convpool::bindings
