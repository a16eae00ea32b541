import com.marcnuri.helm.Helm;
import com.marcnuri.helm.LintResult;
import com.marcnuri.helm.TemplateCommand;

import java.io.IOException;
import java.io.UncheckedIOException;
import java.nio.charset.StandardCharsets;
import java.nio.file.Files;
import java.nio.file.Path;
import java.nio.file.Paths;
import java.nio.file.StandardCopyOption;
import java.util.ArrayList;
import java.util.Comparator;
import java.util.LinkedHashMap;
import java.util.List;
import java.util.Map;
import java.util.stream.Stream;

/**
 * `helm lint` then `helm template` for one chart and one set of values, with Helm's own Go code
 * (helm-java's native library), so CI needs no helm binary.
 *
 * Usage: HelmCheck CHART_DIR [--name NAME] [--namespace NS] [-f VALUES_FILE]... [--set KEY=VALUE]...
 *                  [--out FILE] [--strict] [--no-lint]
 * The rendered YAML goes to FILE (or stdout); lint messages go to stderr.
 * Exit: 0 ok, 1 lint failed, 2 render failed (Helm's error, e.g. a template's `fail`), 64 bad usage.
 */
public final class HelmCheck {
  private static final String MERGED_VALUES_TEMPLATE = "{{ toYaml .Values }}\n";

  private HelmCheck() {}

  public static void main(String[] args) {
    Path chart = null;
    String name = "token-ledger";
    String namespace = "default";
    List<Path> valuesFiles = new ArrayList<>();
    Map<String, String> sets = new LinkedHashMap<>();
    Path out = null;
    boolean strict = false;
    boolean lint = true;
    for (int i = 0; i < args.length; i++) {
      String arg = args[i];
      switch (arg) {
        case "--name": name = value(args, ++i, arg); break;
        case "--namespace": namespace = value(args, ++i, arg); break;
        case "-f": case "--values": valuesFiles.add(Paths.get(value(args, ++i, arg)).toAbsolutePath()); break;
        case "--set": {
          String kv = value(args, ++i, arg);
          int eq = kv.indexOf('=');
          if (eq <= 0) usage("--set expects KEY=VALUE, got " + kv);
          sets.put(kv.substring(0, eq), kv.substring(eq + 1));
          break;
        }
        case "--out": out = Paths.get(value(args, ++i, arg)).toAbsolutePath(); break;
        case "--strict": strict = true; break;
        case "--no-lint": lint = false; break;
        default:
          if (arg.startsWith("-") || chart != null) usage("unexpected argument " + arg);
          chart = Paths.get(arg).toAbsolutePath().normalize();
      }
    }
    if (chart == null) usage("CHART_DIR is required");
    if (!Files.isRegularFile(chart.resolve("Chart.yaml"))) usage(chart + " is not a chart (no Chart.yaml)");

    try {
      if (lint && !lint(chart, name, namespace, valuesFiles, sets, strict)) System.exit(1);
      String rendered;
      try {
        rendered = template(new Helm(chart).template(), name, namespace, valuesFiles, sets);
      } catch (IllegalStateException e) {
        System.err.println("helm template: " + e.getMessage().trim());
        System.exit(2);
        return;
      }
      if (out == null) {
        System.out.print(rendered);
      } else {
        Files.createDirectories(out.getParent());
        Files.write(out, rendered.getBytes(StandardCharsets.UTF_8));
      }
    } catch (IOException e) {
      System.err.println("helm-check: " + e);
      System.exit(2);
    }
    System.exit(0);
  }

  private static String template(TemplateCommand command, String name, String namespace, List<Path> valuesFiles, Map<String, String> sets) {
    command.withName(name).withNamespace(namespace);
    for (Path file : valuesFiles) command.withValuesFile(file);
    for (Map.Entry<String, String> set : sets.entrySet()) command.set(set.getKey(), set.getValue());
    return command.call();
  }

  /**
   * helm-java's lint takes no values (helm lint -f/--set does), so lint a copy of the chart whose
   * values.yaml holds the merged values. Helm itself merges them: a copy with one template that
   * prints `.Values` is rendered with the same files and --set.
   */
  private static boolean lint(Path chart, String name, String namespace, List<Path> valuesFiles, Map<String, String> sets, boolean strict) throws IOException {
    Path work = Files.createTempDirectory("helm-check");
    try {
      Path copy = work.resolve(chart.getFileName());
      boolean hasValues = !valuesFiles.isEmpty() || !sets.isEmpty();
      if (hasValues) {
        Path valuesOnly = work.resolve("values-only").resolve(chart.getFileName());
        Files.createDirectories(valuesOnly.resolve("templates"));
        for (String file : new String[] {"Chart.yaml", "values.yaml", "values.schema.json"}) {
          if (Files.exists(chart.resolve(file))) Files.copy(chart.resolve(file), valuesOnly.resolve(file));
        }
        Files.write(valuesOnly.resolve("templates").resolve("values.yaml"), MERGED_VALUES_TEMPLATE.getBytes(StandardCharsets.UTF_8));
        String merged;
        try {
          merged = template(new Helm(valuesOnly).template(), name, namespace, valuesFiles, sets);
        } catch (IllegalStateException e) {
          System.err.println("helm lint: the chart does not load with these values: " + e.getMessage().trim());
          return false;
        }
        copyTree(chart, copy);
        Files.write(copy.resolve("values.yaml"), stripSourceHeader(merged).getBytes(StandardCharsets.UTF_8));
      } else {
        copyTree(chart, copy);
      }
      Helm helm = new Helm(copy);
      LintResult result = strict ? helm.lint().strict().call() : helm.lint().call();
      for (String message : result.getMessages()) {
        System.err.println("helm lint: " + message.replace(copy.toString(), chart.toString()).replace(work.toString(), chart.getParent().toString()));
      }
      return !result.isFailed();
    } finally {
      deleteTree(work);
    }
  }

  /** `helm template` prefixes each document with `---` and `# Source: …`; the merged values are one document. */
  private static String stripSourceHeader(String rendered) {
    StringBuilder body = new StringBuilder();
    for (String line : rendered.split("\n", -1)) {
      if (line.equals("---") || line.startsWith("# Source: ")) continue;
      body.append(line).append('\n');
    }
    return body.toString();
  }

  private static void copyTree(Path from, Path to) throws IOException {
    try (Stream<Path> paths = Files.walk(from)) {
      paths.forEach(source -> {
        try {
          Path target = to.resolve(from.relativize(source).toString());
          if (Files.isDirectory(source)) Files.createDirectories(target);
          else Files.copy(source, target, StandardCopyOption.REPLACE_EXISTING);
        } catch (IOException e) {
          throw new UncheckedIOException(e);
        }
      });
    }
  }

  private static void deleteTree(Path root) throws IOException {
    try (Stream<Path> paths = Files.walk(root)) {
      paths.sorted(Comparator.reverseOrder()).forEach(p -> p.toFile().delete());
    }
  }

  private static String value(String[] args, int i, String flag) {
    if (i >= args.length) usage(flag + " needs a value");
    return args[i];
  }

  private static void usage(String problem) {
    System.err.println("helm-check: " + problem);
    System.err.println("usage: HelmCheck CHART_DIR [--name NAME] [--namespace NS] [-f VALUES]... [--set KEY=VALUE]... [--out FILE] [--strict] [--no-lint]");
    System.exit(64);
  }
}
