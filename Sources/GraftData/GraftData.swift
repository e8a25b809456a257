// GraftData: see ../shared/DESIGN.md for what this module owns. Its contents arrive with the issues that need them.
import GraftTensor
