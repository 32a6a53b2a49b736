"""skelem.viz"""
