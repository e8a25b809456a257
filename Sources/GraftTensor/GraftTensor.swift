// GraftTensor: the Tensor type and the compute kernels (see DESIGN.md).
import CBLAS
