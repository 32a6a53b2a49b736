"""skelem.cli"""
