"""skelem.training"""
