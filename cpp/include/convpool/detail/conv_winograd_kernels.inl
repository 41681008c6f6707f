// The transforms of Winograd's F(2x2, 3x3) convolution (conv_winograd.hpp), compiled once per
// vector instruction set by detail/for_each_vector_isa.hpp: loops over the tiles of a row of tiles,
// which the compiler vectorizes.

// The input transform B^T d B of `count` tiles side by side, tile j's 4x4 patch d read from four
// zero-padded input rows: d[r][c] = in[r * row_stride + 2j + c]. Value xi = 4a + b of tile j goes
// to v[xi * v_stride + j].
template <typename T>
void winograd_input_tiles(VectorIsa, const T* in, int64_t row_stride, int64_t count, T* v, int64_t v_stride) {
  const T *r0 = in, *r1 = in + row_stride, *r2 = in + 2 * row_stride, *r3 = in + 3 * row_stride;
#pragma omp simd
  for (int64_t j = 0; j < count; ++j) {
    // B^T d: the rows combined, for each of the four columns.
    T w[4][4];
    for (int c = 0; c < 4; ++c) {
      w[0][c] = r0[2 * j + c] - r2[2 * j + c];
      w[1][c] = r1[2 * j + c] + r2[2 * j + c];
      w[2][c] = r2[2 * j + c] - r1[2 * j + c];
      w[3][c] = r1[2 * j + c] - r3[2 * j + c];
    }
    // (B^T d) B: the columns combined, for each row.
    for (int a = 0; a < 4; ++a) {
      v[(4 * a + 0) * v_stride + j] = w[a][0] - w[a][2];
      v[(4 * a + 1) * v_stride + j] = w[a][1] + w[a][2];
      v[(4 * a + 2) * v_stride + j] = w[a][2] - w[a][1];
      v[(4 * a + 3) * v_stride + j] = w[a][1] - w[a][3];
    }
  }
}

// The output transform A^T m A + bias of `count` tiles side by side for one output channel, value
// xi of tile j at m[xi * m_stride + j], through the ReLU when `Relu`: tile j's 2x2 outputs go to
// columns 2j and 2j + 1 of out0 and out1, those left of `width`. Returns whether an output written
// was infinite or NaN before the ReLU, which would turn -inf into 0.
template <bool Relu, typename T>
bool winograd_output_row(const T* m, int64_t m_stride, int64_t count, T bias, T* out0, T* out1, int64_t width) {
  const int64_t pairs = std::min(count, width / 2);
  // 0 while every output is finite, NaN after an infinite or NaN one (finite * 0 is 0, inf * 0 and
  // NaN * 0 are NaN; a finite sum that overflows only costs a needless fallback): a sum the
  // compiler vectorizes in any order.
  T non_finite = 0;
  const auto transform = [&](int64_t j, T& y00, T& y01, T& y10, T& y11) {
    T s0[4], s1[4];
    for (int b = 0; b < 4; ++b) {
      s0[b] = m[b * m_stride + j] + m[(4 + b) * m_stride + j] + m[(8 + b) * m_stride + j];
      s1[b] = m[(4 + b) * m_stride + j] - m[(8 + b) * m_stride + j] - m[(12 + b) * m_stride + j];
    }
    y00 = s0[0] + s0[1] + s0[2] + bias;
    y01 = s0[1] - s0[2] - s0[3] + bias;
    y10 = s1[0] + s1[1] + s1[2] + bias;
    y11 = s1[1] - s1[2] - s1[3] + bias;
    non_finite += (y00 + y01 + y10 + y11) * T(0);
    if (Relu) {
      y00 = relu_of(y00);
      y01 = relu_of(y01);
      y10 = relu_of(y10);
      y11 = relu_of(y11);
    }
  };
#pragma omp simd reduction(+ : non_finite)
  for (int64_t j = 0; j < pairs; ++j) {
    T y00, y01, y10, y11;
    transform(j, y00, y01, y10, y11);
    out0[2 * j] = y00;
    out0[2 * j + 1] = y01;
    out1[2 * j] = y10;
    out1[2 * j + 1] = y11;
  }
  if (pairs < count && 2 * pairs < width) {  // an odd width: the last tile's first column alone
    T y00, y01, y10, y11;
    transform(pairs, y00, y01, y10, y11);
    out0[2 * pairs] = y00;
    out1[2 * pairs] = y10;
  }
  return non_finite != T(0);
}

template <typename T>
bool winograd_output_tiles(VectorIsa, const T* m, int64_t m_stride, int64_t count, T bias, Activation activation,
                           T* out0, T* out1, int64_t width) {
  if (activation == Activation::relu) return winograd_output_row<true>(m, m_stride, count, bias, out0, out1, width);
  return winograd_output_row<false>(m, m_stride, count, bias, out0, out1, width);
}
