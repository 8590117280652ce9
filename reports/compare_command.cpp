// bpcheck compare --model M.json --params P.json --data D.json --gradient G.json [--precision float|double]
//                 [--json FILE] [--junit FILE] [--allow-less-accurate] [--seed N] [--jobs N]
// Judges a gradient computed by another program against a high-precision truth (quad or mp100) (bpcheck/verify/compare.hpp).
// Exit 0 when every block is within its rounding bound, 1 when one is wrong or less accurate (less
// accurate only is advice with --allow-less-accurate), 2 on bad input.
#include <cstdint>
#include <memory>

#include "bpcheck/io/formats.hpp"
#include "bpcheck/verify/compare.hpp"
#include "bpcheck/verify/hvp.hpp"
#include "commands.hpp"

namespace bpcheck::cli {

namespace {

struct CompareCommandOptions {
  std::string model, params, data, gradient, hvp, vector, precision, json, junit, accumulate = "same";
  std::uint64_t seed = 42;
  int jobs = 0;
  bool strict = false, allow_less_accurate = false;
};

}  // namespace

Command add_compare_command(CLI::App& parent) {
  auto o = std::make_shared<CompareCommandOptions>();
  CLI::App* app = parent.add_subcommand(
      "compare", "Judge a gradient computed by another program (bpcheck's gradient format) against a high-precision truth (quad or mp100), "
                 "block by block, within the rounding bound of its precision (with --hvp and --vector: a Hessian-vector "
                 "product against the mp100 one). Exit 0: right, 1: wrong or less accurate "
                 "than its precision allows, 2: bad input");
  app->add_option("--model", o->model, "model spec JSON file")->required();
  app->add_option("--params", o->params, "parameters JSON file the gradient was computed at")->required();
  app->add_option("--data", o->data, "data JSON file the gradient was computed on")->required();
  auto* gradient = app->add_option("--gradient", o->gradient, "the gradient to judge, in the gradient format");
  auto* hvp = app->add_option("--hvp", o->hvp, "instead, a Hessian-vector product to judge, in the HVP format")
                  ->excludes(gradient);
  app->add_option("--vector", o->vector, "the vector V of --hvp's H V, in the gradient format")->needs(hvp);
  app->add_option("--precision", o->precision,
                  "the precision the gradient was computed in (default: the document's \"precision\")")
      ->check(CLI::IsMember({"float", "double", "bf16", "fp16"}));
  add_accumulate_option(app, o->accumulate);
  app->add_option("--json", o->json, "also write the comparison as JSON to FILE");
  app->add_option("--junit", o->junit, "also write the comparison as JUnit XML to FILE");
  auto* allow = app->add_flag("--allow-less-accurate", o->allow_less_accurate,
                              "a block only less accurate than its precision allows is advice (exit 0), not a failure");
  app->add_flag("--strict", o->strict, "less accurate fails (exit 1): the default, kept for scripts")->excludes(allow);
  app->add_option("--jobs", o->jobs, "threads for the rounding moves (default 0: one per core)")
      ->check(CLI::NonNegativeNumber);
  app->add_option("--seed", o->seed, "seed of the rounding moves of the activations")
      ->check(seed_check())
      ->capture_default_str();
  return {app, [o](std::ostream& out) {
            NetworkSubject subject;
            subject.spec = read_model_spec(o->model);
            subject.parameters = read_json_file(o->params);
            subject.parameters_file = o->params;
            subject.data = read_json_file(o->data);
            subject.data_file = o->data;
            if (o->gradient.empty() == o->hvp.empty() || o->hvp.empty() != o->vector.empty())
              throw input_error("compare: give --gradient G.json, or --hvp H.json with --vector V.json");
            CompareOptions options;
            options.seed = o->seed;
            options.allow_less_accurate = o->allow_less_accurate;
            options.jobs = o->jobs;
            options.accumulation = accumulation_of(o->accumulate);
            options.gradient_file = o->hvp.empty() ? o->gradient : o->hvp;
            const bool second = !o->hvp.empty();  // H V (bpcheck/verify/hvp.hpp) rather than a gradient
            const GradientComparison c =
                second ? compare_hvp(subject, read_json_file(o->hvp), read_json_file(o->vector), o->precision, options,
                                     o->vector)
                       : compare_gradient(subject, read_json_file(o->gradient), o->precision, options);
            if (!o->json.empty())
              write_file_atomically(o->json, (second ? hvp_comparison_to_json(c) : to_json(c)).dump(2) + "\n");
            if (!o->junit.empty()) write_file_atomically(o->junit, to_junit_xml(c));
            out << (second ? format_hvp_table(c) : format_table(c));
            return c.exit_code();
          }};
}

}  // namespace bpcheck::cli
