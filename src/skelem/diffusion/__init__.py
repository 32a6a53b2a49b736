"""skelem.diffusion"""
