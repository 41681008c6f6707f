#pragma once
// Everything: include this, or only the header of the kernel family you need.
#include "activation.hpp"
#include "adaptive_avg_pool.hpp"
#include "avg_pool.hpp"
#include "batch_norm.hpp"
#include "conv.hpp"
#include "isa.hpp"
#include "lp_pool.hpp"
#include "max_pool.hpp"
#include "parallel.hpp"
#include "shape.hpp"
#include "stochastic_pool.hpp"
#include "window.hpp"
