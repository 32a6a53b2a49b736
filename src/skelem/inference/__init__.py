"""skelem.inference"""
